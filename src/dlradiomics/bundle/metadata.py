"""`bundle.json`: its schema, its self-digest, and the refusal that names the bad field.

The document records everything the model needs besides its own file, the SHA-256 of every
other file of the bundle, and `content_sha256`, the SHA-256 of the document itself (canonical
JSON without that key). A hand edit (a threshold, a bin width of the radiomics parameters)
therefore shows: a value outside the schema is refused naming the field, a value inside it is
refused because the document no longer matches its digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError, model_validator

from dlradiomics.bundle.errors import BundleError
from dlradiomics.bundle.profiles import FeatureRange, FiniteFloat, TrainingIntensityProfile
from dlradiomics.models.blocks import BLOCK_SEPARATOR, FEATURE_KINDS, LEVELS, block_name

BUNDLE_FORMAT_VERSION = 2
METADATA_FILE = "bundle.json"
MODEL_FILE = "model.skops"
WEIGHTS_FILE = "weights.safetensors"
DIGEST_FIELD = "content_sha256"
MAX_METADATA_BYTES = 256 << 20  # thousands of deep-feature ranges are a few MiB

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]


class BundleMetadata(BaseModel):
    """The contents of `bundle.json`, validated.

    Args:
        format_version: `BUNDLE_FORMAT_VERSION`.
        versions: library versions the model was saved with.
        threshold: decision threshold frozen on training data, finite in [0, 1].
        modalities: modalities the model uses.
        feature_kinds: `radiomic` and/or `deep`.
        level: `image` (one modality, image rows averaged per patient) or `patient` rows.
        feature_columns: modelling-table columns the model was fitted on, in order.
        feature_ranges: the training range of each feature column (None: no finite training value).
        intensity_profiles: the training images of each modality (absent when saved from tables only).
        files: SHA-256 of every other file of the bundle.
        settings: everything else the study records (radiomics parameters, backbone, weights ...).
        content_sha256: SHA-256 of this document without this field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: StrictInt
    versions: dict[str, str] = Field(default_factory=dict)
    threshold: FiniteFloat = Field(ge=0.0, le=1.0)
    modalities: list[Name] = Field(min_length=1)
    feature_kinds: list[Literal[FEATURE_KINDS]] = Field(min_length=1)  # type: ignore[valid-type]
    level: Literal[LEVELS]  # type: ignore[valid-type]
    feature_columns: list[Name] = Field(min_length=1)
    feature_ranges: dict[str, FeatureRange | None]
    intensity_profiles: dict[str, TrainingIntensityProfile] = Field(default_factory=dict)
    files: dict[Literal[MODEL_FILE, WEIGHTS_FILE], Sha256]  # type: ignore[valid-type]
    settings: dict[str, Any] = Field(default_factory=dict)
    content_sha256: Sha256

    @model_validator(mode="after")
    def _consistent(self) -> BundleMetadata:
        for field in ("modalities", "feature_kinds", "feature_columns"):
            values = getattr(self, field)
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"{field}: repeated value(s) {repeated[:3]}")
        if self.level == "image" and len(self.modalities) != 1:
            raise ValueError(f"level: 'image' rows hold one modality, but modalities are {self.modalities}")
        blocks = {block_name(modality, kind) for modality in self.modalities for kind in self.feature_kinds}
        strays = [column for column in self.feature_columns if column.partition(BLOCK_SEPARATOR)[0] not in blocks
                  or not column.partition(BLOCK_SEPARATOR)[2]]
        if strays:
            raise ValueError(f"feature_columns: {strays[:3]} are not '{{modality}}.{{kind}}__{{feature}}' of "
                             f"modalities {self.modalities} and kinds {self.feature_kinds}")
        if set(self.feature_ranges) != set(self.feature_columns):
            unknown = sorted(set(self.feature_ranges) - set(self.feature_columns))[:3]
            absent = sorted(set(self.feature_columns) - set(self.feature_ranges))[:3]
            raise ValueError(f"feature_ranges: must cover exactly feature_columns (absent {absent}, unknown {unknown})")
        unknown_profiles = sorted(set(self.intensity_profiles) - set(self.modalities))
        if unknown_profiles:
            raise ValueError(f"intensity_profiles: modalities {unknown_profiles} are not the model's {self.modalities}")
        if MODEL_FILE not in self.files:
            raise ValueError(f"files: {MODEL_FILE} is not listed")
        return self


def content_digest(document: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a document, without its `content_sha256`."""
    body = {key: value for key, value in document.items() if key != DIGEST_FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _refusal(source: str, error: ValidationError) -> BundleError:
    problems = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        shown = "" if item["type"] in ("missing", "value_error") else f" (got {item.get('input')!r:.80})"
        problems.append(f"{field}: {message}{shown}" if field else message)
    return BundleError(f"{source}: refused: " + "; ".join(problems))


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise BundleError(f"key(s) {repeated} appear more than once")
    return dict(pairs)


def parse_metadata(text: str, source: str) -> BundleMetadata:
    """Validate the text of `bundle.json`.

    Args:
        text: the file's contents.
        source: its path, for messages.

    Raises:
        BundleError: not JSON, a repeated key, another format version, a field outside the schema
            (named), or a document that does not match its own digest.
    """
    try:
        document = json.loads(text, object_pairs_hook=_no_repeated_keys)
    except BundleError as error:
        raise BundleError(f"{source}: refused: {error}") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise BundleError(f"{source}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise BundleError(f"{source}: refused: the document is not a JSON object")
    version = document.get("format_version")
    if type(version) is not int:
        raise BundleError(f"{source}: refused: format_version must be an integer, got {version!r}")
    if version < BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{source}: bundle format version {version} was written by an older dlradiomics, which "
                          "recorded neither file hashes nor training ranges; this dlradiomics reads version "
                          f"{BUNDLE_FORMAT_VERSION} only. Run the study again (dlradiomics run) to get a fresh bundle")
    if version > BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{source}: bundle format version {version} is newer than this dlradiomics reads "
                          f"({BUNDLE_FORMAT_VERSION}); upgrade dlradiomics")
    try:
        metadata = BundleMetadata.model_validate(document)
    except ValidationError as error:
        raise _refusal(source, error) from None
    if content_digest(document) != metadata.content_sha256:
        raise BundleError(f"{source}: refused: the document was changed after the bundle was written (it no "
                          f"longer matches its {DIGEST_FIELD}); a bundle's settings cannot be edited by hand. "
                          "Run the study again to change them")
    return metadata


def build_metadata(fields: dict[str, Any], source: str) -> tuple[BundleMetadata, str]:
    """Validate the fields of a new `bundle.json` and seal it with its digest.

    Returns:
        The validated metadata and the JSON text to write.

    Raises:
        BundleError: a field outside the schema, named.
    """
    document = json.loads(json.dumps({**fields, "format_version": BUNDLE_FORMAT_VERSION}, default=str))
    try:  # validated before sealing, so that a bad value is named by its field
        BundleMetadata.model_validate({**document, DIGEST_FIELD: "0" * 64})
        document[DIGEST_FIELD] = content_digest(document)
    except ValidationError as error:
        raise _refusal(source, error) from None
    except ValueError as error:  # NaN or infinity inside the free-form settings
        raise BundleError(f"{source}: cannot be written: settings hold a value JSON cannot carry ({error})") from None
    return BundleMetadata.model_validate(document), json.dumps(document, indent=2, allow_nan=False)
