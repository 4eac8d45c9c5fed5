"""Reading YAML that a stranger may have written: study files, manifests, PyRadiomics parameters.

``yaml.safe_load`` builds no arbitrary objects, but it still accepts files that take minutes and
gigabytes downstream: a "billion laughs" file, whose nine lines of anchors and aliases expand to
10^9 values as soon as anything walks the result; a self-referencing alias, which makes any walk
recurse forever; a key given twice, of which YAML silently keeps the last. :func:`load_yaml_file`
and :func:`load_yaml_text` refuse each of these at once, with the file, line and what to fix,
before any Python object is built:

- the file may hold at most ``max_bytes`` bytes, must be UTF-8 text (not binary);
- aliases may add at most ``max_alias_nodes`` nodes to the document once expanded (a normal
  ``<<: *defaults`` adds a handful), and may not refer to themselves;
- a mapping may not repeat a key.

This module imports nothing else of the package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ALIAS_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlInputError(ValueError):
    """A YAML file that is refused: too large, not text, malformed, alias bomb, repeated key.

    Args:
        source: the file (or a description of the text).
        problem: what is wrong, and where.
        hint: what to do about it.
    """

    def __init__(self, source: str, problem: str, hint: str = ""):
        self.source = source
        self.problem = problem
        self.hint = hint
        super().__init__(f"{source}: {problem}" + (f"; {hint}" if hint else ""))


def read_text_file(path: str | os.PathLike[str], *, what: str = "file",
                   max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped), or a clear refusal.

    Args:
        path: the file.
        what: how to call it in messages ("manifest", "study file").
        max_bytes: the largest accepted size.

    Raises:
        YamlInputError: missing, a folder, too large, binary, or not UTF-8 (with the line of the
            first bad byte).
    """
    path = Path(path)
    if path.is_dir():
        raise YamlInputError(str(path), f"the {what} is a folder, not a file")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise YamlInputError(str(path), f"cannot read the {what}: {error.strerror or error}") from None
    if size > max_bytes:
        raise YamlInputError(str(path), f"the {what} is {size:,} bytes; at most {max_bytes:,} are read",
                             "split it, or check that this is the file you meant")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise YamlInputError(str(path), f"cannot read the {what}: {error.strerror or error}") from None
    return decode_text(data, str(path), what=what)


def decode_text(data: bytes, source: str, *, what: str = "file") -> str:
    """Decode UTF-8 bytes (dropping a byte-order mark), refusing binary data and other encodings.

    Raises:
        YamlInputError: the bytes are binary (a NUL byte, an image signature) or not UTF-8.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YamlInputError(source, f"the {what} is UTF-16 text (a spreadsheet's 'Unicode text')",
                             "save it as UTF-8 (in a spreadsheet: 'CSV UTF-8')")
    signature = _binary_signature(data)
    if signature or b"\x00" in data[:8192]:
        kind = f"a {signature} file" if signature else "binary data (it holds NUL bytes)"
        raise YamlInputError(source, f"the {what} is {kind}, not text",
                             f"give the {what} as a UTF-8 text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise YamlInputError(
            source, f"the {what} is not UTF-8 text: byte 0x{data[error.start]:02x} on line {line} "
            "(latin-1 or Windows-1252?)",
            "save it as UTF-8 (in a spreadsheet: 'CSV UTF-8'), or convert it with "
            "`iconv -f latin1 -t utf-8 FILE > NEW`") from None


def _binary_signature(data: bytes) -> str | None:
    signatures = {b"\x89PNG": "PNG image", b"\xff\xd8\xff": "JPEG image", b"PK\x03\x04": "ZIP (or Excel .xlsx)",
                  b"%PDF": "PDF", b"\xd0\xcf\x11\xe0": "Microsoft Office (.xls)", b"\x1f\x8b": "gzip",
                  b"PAR1": "Parquet", b"II*\x00": "TIFF image", b"MM\x00*": "TIFF image"}
    for magic, name in signatures.items():
        if data.startswith(magic):
            return name
    if data[128:132] == b"DICM":
        return "DICOM"
    return None


def load_yaml_file(path: str | os.PathLike[str], *, what: str = "YAML file", max_bytes: int = DEFAULT_MAX_BYTES,
                   max_alias_nodes: int = DEFAULT_MAX_ALIAS_NODES) -> Any:
    """Read a YAML file safely (see the module docstring for what is refused).

    Args:
        path: the file.
        what: how to call it in messages.
        max_bytes: the largest accepted file size.
        max_alias_nodes: how many nodes aliases may add once expanded.

    Returns:
        The parsed document (``None`` for an empty file).

    Raises:
        YamlInputError: naming the file, the line and the problem.
    """
    text = read_text_file(path, what=what, max_bytes=max_bytes)
    return load_yaml_text(text, source=str(path), max_alias_nodes=max_alias_nodes)


def load_yaml_text(text: str, *, source: str = "<text>", max_alias_nodes: int = DEFAULT_MAX_ALIAS_NODES) -> Any:
    """Parse YAML text safely (see :func:`load_yaml_file`).

    Raises:
        YamlInputError: naming the source, the line and the problem.
    """
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as error:
            raise YamlInputError(source, f"not valid YAML: {_one_line(error)}") from None
        except RecursionError:
            raise YamlInputError(source, "the YAML nests too deeply to be a settings file or a table") from None
        if node is None:
            return None
        _check_node_graph(node, source, max_alias_nodes)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as error:
            raise YamlInputError(source, f"not valid YAML: {_one_line(error)}") from None
    finally:
        loader.dispose()


def _one_line(error: yaml.YAMLError) -> str:
    # The marks name the stream "<unicode string>"; the caller's message names the file instead.
    return " ".join(str(error).replace('in "<unicode string>", ', "").split())


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_node_graph(root: yaml.Node, source: str, max_alias_nodes: int) -> None:
    """Refuse recursive aliases, alias bombs and repeated keys, walking each distinct node once."""
    expanded: dict[int, int] = {}  # node id -> size of its subtree once every alias is expanded
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise YamlInputError(source, f"an alias on line {_line(node)} refers to itself (a recursive "
                                 "structure)", "replace the alias by the values it stands for")
        if isinstance(node, yaml.MappingNode):
            _check_repeated_keys(node, source)
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise YamlInputError(source, f"an alias on line {_line(node)} refers to a node that contains it "
                                     "(a recursive structure)", "replace the alias by the values it stands for")
            if id(child) not in expanded:
                stack.append((child, False))
    distinct = len(expanded)
    added = expanded[id(root)] - distinct
    if added > max_alias_nodes:
        raise YamlInputError(
            source, f"aliases expand the document from {distinct:,} to {expanded[id(root)]:,} values (at most "
            f"{max_alias_nodes:,} may be added by aliases): an alias bomb ('billion laughs') or a file that is not "
            "a settings file", "write the values out instead of nesting aliases")


def _check_repeated_keys(node: yaml.MappingNode, source: str) -> None:
    seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
            continue
        identity = (key_node.tag, key_node.value)
        if identity in seen:
            raise YamlInputError(source, f"key {key_node.value!r} appears twice in one mapping (lines "
                                 f"{seen[identity]} and {_line(key_node)}); YAML would keep only the last",
                                 "keep one of them")
        seen[identity] = _line(key_node)
