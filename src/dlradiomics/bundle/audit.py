"""Check a skops model file before anything in it is built, then build it.

Three checks, all before a single object is constructed:

1. The archive itself: a zip whose members are stored uncompressed (as `skops.io.dumps` writes
   them, so a small file cannot expand into a huge one) and hold a `schema.json`.
2. Our own walk of `schema.json` (plain JSON): every node's type must be on the allowlist with
   the loader it is allowed to come with (see `dlradiomics.bundle.allowlist`), or be a class the
   caller named; no function, method or partial is ever accepted.
3. skops' own audit (`skops.io.get_untrusted_types`): each type skops does not trust by default
   must have passed check 2; only then is the file loaded, with exactly those types trusted.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dlradiomics.bundle.allowlist import allowed_types, class_name, permitted
from dlradiomics.bundle.errors import BundleError
from dlradiomics.bundle.metadata import MODEL_FILE

SCHEMA_MEMBER = "schema.json"
MAX_SCHEMA_BYTES = 64 << 20  # a genuine schema of the largest grid model is well under 1 MiB
_CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def resolve_trusted_classes(trusted: Iterable[str]) -> tuple[str, ...]:
    """The classes a caller trusts, as skops names them (`module.Class` where the class is defined).

    Each name must be one class, written `package.module.Class`; a public alias such as
    `sklearn.ensemble.HistGradientBoostingClassifier` is resolved to where the class is defined.
    Resolving imports the named module: the caller named it, and loading the model would import it anyway.

    Raises:
        BundleError: for a prefix, a wildcard, a name that does not import, or anything that is not a class.
    """
    resolved = []
    for name in trusted:
        if not isinstance(name, str) or not _CLASS_NAME.match(name):
            raise BundleError(f"trusted class {name!r}: name one class exactly, as 'package.module.Class' "
                              "(no prefixes, wildcards or module names)")
        module, _, attribute = name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise BundleError(f"trusted class {name!r} cannot be imported ({error})") from None
        if not isinstance(found, type):
            raise BundleError(f"trusted class {name!r} is a {type(found).__name__}, not a class; a bundle never "
                              "loads functions")
        resolved.append(class_name(found))
    return tuple(dict.fromkeys(resolved))


def _schema_of(payload: bytes, source: Path) -> Any:
    if not zipfile.is_zipfile(io.BytesIO(payload)):
        kind = "a pickle" if payload[:1] == b"\x80" else "not a skops file"
        raise BundleError(f"{source}: refused: the file is {kind}; bundles load only skops files, "
                          "which cannot run code on load")
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = archive.infolist()
            packed = [member.filename for member in members if member.compress_type != zipfile.ZIP_STORED]
            if packed:
                raise BundleError(f"{source}: refused: compressed member(s) {packed[:3]}; dlradiomics writes "
                                  "skops files uncompressed")
            if SCHEMA_MEMBER not in archive.namelist():
                raise BundleError(f"{source}: refused: no {SCHEMA_MEMBER}; not a skops file")
            if archive.getinfo(SCHEMA_MEMBER).file_size > MAX_SCHEMA_BYTES:
                raise BundleError(f"{source}: refused: {SCHEMA_MEMBER} is larger than {MAX_SCHEMA_BYTES >> 20} MiB")
            return json.loads(archive.read(SCHEMA_MEMBER))
    except BundleError:
        raise
    except (zipfile.BadZipFile, ValueError, RecursionError, OSError) as error:
        raise BundleError(f"{source}: refused: not a readable skops file ({type(error).__name__}: {error})") from None


def schema_nodes(schema: Any) -> list[tuple[str, str]]:
    """Every `(module.Class, loader)` pair named in a skops schema, found without building anything.

    Any dict carrying a `__loader__` key is treated as a node, wherever it sits, so a node hidden
    in an unusual place (an extra attribute, a dict value) is still seen.

    Raises:
        ValueError: for a node whose names are not text.
    """
    found: list[tuple[str, str]] = []
    pending = [schema]
    while pending:  # iterative: a deeply nested crafted file cannot exhaust the stack here
        item = pending.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                module, name, loader = item.get("__module__"), item.get("__class__"), item.get("__loader__")
                if not all(isinstance(part, str) for part in (module, name, loader)):
                    raise ValueError(f"a node names its type with non-text values: {module!r}, {name!r}, {loader!r}")
                found.append((f"{module}.{name}", loader))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def classes_beyond_allowlist(model: Any) -> list[str]:
    """The classes a fitted model holds that `load_bundle` refuses unless the caller names them.

    The bundle decides what is trusted, so the study asks here which classes of a user's own
    estimator a bundle must record (and a loader must pass as `load_bundle(path, trusted=...)`).

    Args:
        model: a fitted estimator, as `save_bundle` would write it.

    Returns:
        The sorted `module.Class` names (as skops names them) that are not on the allowlist.
    """
    import skops.io

    schema = _schema_of(skops.io.dumps(model), Path(MODEL_FILE))
    return sorted({name for name, _ in schema_nodes(schema)} - set(allowed_types()))


def audit_model_file(payload: bytes, source: Path, trusted: Sequence[str] = ()) -> list[str]:
    """Refuse a skops file holding anything outside the allowlist; return the types to trust on load.

    Args:
        payload: the bytes of `model.skops`.
        source: its path, for messages.
        trusted: classes the caller named explicitly (their own estimators), each `package.module.Class`.

    Returns:
        The types skops' audit reports as untrusted, every one of them checked against the allowlist.

    Raises:
        BundleError: naming the refused types (and how to trust a class of one's own).
    """
    import skops.io

    trusted = resolve_trusted_classes(trusted)
    try:
        nodes = schema_nodes(_schema_of(payload, source))
    except ValueError as error:
        raise BundleError(f"{source}: refused: {error}") from None
    refused = sorted({f"{name} (as {loader})" for name, loader in nodes if not permitted(name, loader, trusted)})
    try:
        untrusted = skops.io.get_untrusted_types(data=payload)
    except Exception as error:  # skops raises many exception types on a malformed schema
        raise BundleError(f"{source}: refused: skops cannot audit it ({type(error).__name__}: {error})") from None
    seen = {name for name, _ in nodes}
    # skops names methods as "module.Class.method"; those are never on the allowlist.
    refused += sorted(f"{name} (skops audit)" for name in untrusted if name not in seen and name not in trusted)
    if refused:
        raise BundleError(
            f"{source}: refused: it holds types a bundle may not load: {refused}. A dlradiomics model holds "
            "only the classes of its allowlist; if one of these is your own estimator class and you trust "
            "its code, name it explicitly (load_bundle(path, trusted=['package.module.Class']) or "
            "dlradiomics predict --trust package.module.Class)")
    return untrusted


def load_model(payload: bytes, source: Path, trusted: Sequence[str] = ()) -> Any:
    """Audit a skops file (see `audit_model_file`) and only then build the model it holds.

    Raises:
        BundleError: the file is refused or cannot be built.
    """
    import skops.io

    untrusted = audit_model_file(payload, source, trusted)
    try:
        return skops.io.loads(payload, trusted=untrusted)
    except Exception as error:  # the audit passed, so this is a damaged file, not a refused type
        raise BundleError(f"{source}: the model cannot be rebuilt ({type(error).__name__}: {error})") from None
