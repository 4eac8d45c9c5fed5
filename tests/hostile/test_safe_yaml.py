"""YAML from strangers: alias bombs, self-references, repeated keys, binary and latin-1 files are refused at once."""

from __future__ import annotations

import time

import pytest

from dlradiomics.io.safe_yaml import YamlInputError, load_yaml_file, load_yaml_text


def billion_laughs(levels: int = 9) -> str:
    """The classic: nine levels of nine aliases, 9^9 (387 million) strings once expanded."""
    names = "abcdefghijklmnop"[:levels]
    lines = [f'{names[0]}: &{names[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip(names, names[1:])]
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_in_milliseconds_with_its_size():
    started = time.perf_counter()
    with pytest.raises(YamlInputError, match=r"alias bomb.*write the values out") as caught:
        load_yaml_text(billion_laughs(), source="bomb.yaml")
    assert time.perf_counter() - started < 0.5
    # The expanded tree, counted from the definition: level a is a list of 9 strings (10 nodes), each
    # next level a list of 9 copies of the previous; the top mapping adds itself and its 9 keys.
    sizes = [10]
    for _ in range(8):
        sizes.append(1 + 9 * sizes[-1])
    assert "bomb.yaml" in str(caught.value) and f"to {1 + 9 + sum(sizes):,} values" in str(caught.value)


def test_ordinary_anchors_and_merge_keys_still_work():
    text = "defaults: &d {bin: 25, norm: false}\nus:\n  <<: *d\n  bin: 10\nmg: *d\n"
    assert load_yaml_text(text) == {"defaults": {"bin": 25, "norm": False}, "us": {"bin": 10, "norm": False},
                                    "mg": {"bin": 25, "norm": False}}


@pytest.mark.parametrize("text", ["a: &a [*a]", "a: &a {b: [1, *a]}"])
def test_a_self_referencing_alias_is_refused(text):
    with pytest.raises(YamlInputError, match="recursive"):
        load_yaml_text(text)


def test_a_repeated_key_is_refused_with_both_lines():
    with pytest.raises(YamlInputError, match=r"'cv' appears twice in one mapping \(lines 1 and 3\)"):
        load_yaml_text("cv: 1\nname: x\ncv: 2\n")


def test_malformed_yaml_names_the_line_not_the_stream():
    with pytest.raises(YamlInputError) as caught:
        load_yaml_text("rows: [1, 2\nname: x\n", source="m.yaml")
    assert "m.yaml: not valid YAML" in str(caught.value) and "line" in str(caught.value)
    assert "<unicode string>" not in str(caught.value)


def test_binary_latin1_and_oversized_files_are_refused(tmp_path):
    png = tmp_path / "image.yaml"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    with pytest.raises(YamlInputError, match="PNG image file, not text"):
        load_yaml_file(png)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: ok\nnote: caf\xe9\n".encode("latin-1"))
    with pytest.raises(YamlInputError, match=r"not UTF-8 text: byte 0xe9 on line 2"):
        load_yaml_file(latin)
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "a" * 2000)
    with pytest.raises(YamlInputError, match="at most 1,000 are read"):
        load_yaml_file(big, max_bytes=1000)
    with pytest.raises(YamlInputError, match="is a folder"):
        load_yaml_file(tmp_path)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffname: caf\xe9\n".encode("utf-8"))
    assert load_yaml_file(path) == {"name": "caf\xe9"}
