"""The case viewer's web application (Starlette): one page, a model description and a prediction endpoint.

Everything the page needs is served by this application from files inside the package; the
Content-Security-Policy forbids the browser to load anything from elsewhere, so the viewer works
offline and sends no patient image anywhere but to this local server.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dlradiomics.bundle import ModelBundle
from dlradiomics.serve.case import deep_modalities, predict_case
from dlradiomics.serve.uploads import ROLES, UploadedFile, UploadError, write_case_manifest

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "connect-src 'self'; form-action 'self'; frame-ancestors 'none'")
MAX_UPLOAD_BYTES = 1024 ** 3  # a whole request; a DICOM or NIfTI volume can be hundreds of MB


class SecurityHeaders:
    """ASGI middleware adding the Content-Security-Policy and no-sniff headers to every response."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def model_description(bundle: ModelBundle) -> dict[str, Any]:
    """What the page says about the model: modalities, threshold, configuration, training size."""
    settings = bundle.settings
    return {
        "modalities": bundle.modalities,
        "deep_modalities": deep_modalities(bundle),
        "feature_kinds": list(bundle.feature_kinds),
        "threshold": bundle.threshold,
        "configuration": settings.get("configuration", {}),
        "trained_on": settings.get("trained_on", {}),
        "bundle": str(bundle.path) if bundle.path else "",
    }


def create_app(bundle: ModelBundle, *, notices: Sequence[str] = (), debug: bool = False) -> Starlette:
    """The viewer's application for one loaded bundle.

    Args:
        bundle: the model to apply.
        notices: messages to show on the page for every case (e.g. library-version warnings at load).
        debug: log the full traceback of an unexpected error (the page always gets one line).

    Returns:
        A Starlette (ASGI) application; serve it with uvicorn or test it with Starlette's TestClient.
    """
    one_case_at_a_time = threading.Lock()  # feature extraction and torch already use the cores
    description = model_description(bundle) | {"notices": list(notices)}

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    async def model(request: Request) -> JSONResponse:
        return JSONResponse(description)

    async def predict(request: Request) -> JSONResponse:
        if int(request.headers.get("content-length") or 0) > MAX_UPLOAD_BYTES:
            return _error(f"the upload is larger than {MAX_UPLOAD_BYTES // 1024 ** 2} MB", status=413)
        try:
            uploads = await _read_uploads(request, bundle.modalities)
        except UploadError as error:
            return _error(str(error))

        def run() -> dict[str, Any]:
            with one_case_at_a_time, tempfile.TemporaryDirectory(prefix="dlradiomics-serve-") as scratch:
                case = write_case_manifest(uploads, bundle.modalities, Path(scratch) / "case")
                return predict_case(bundle, case, Path(scratch)).to_json()

        try:
            result = await run_in_threadpool(run)
        except UploadError as error:
            return _error(str(error))
        except Exception as error:  # the page gets one line, never a traceback
            logger.error("prediction failed: %s: %s", type(error).__name__, error, exc_info=debug)
            return _error(f"the prediction failed unexpectedly ({type(error).__name__}: {error}); "
                          "the server's terminal has the details", status=500)
        result["notices"] = list(notices) + result["notices"]
        return JSONResponse(result)

    routes = [
        Route("/", index),
        Route("/api/model", model),
        Route("/api/predict", predict, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_uploads(request: Request, modalities: Sequence[str]) -> dict[str, dict[str, UploadedFile]]:
    """`{modality: {role: UploadedFile}}` from a multipart form with fields named `"{modality}.{role}"`."""
    try:
        form = await request.form(max_files=2 * len(modalities) + 2, max_fields=2 * len(modalities) + 8)
    except Exception as error:  # python-multipart raises several types for a malformed body
        raise UploadError(f"the upload could not be read as a form: {error}") from None
    uploads: dict[str, dict[str, UploadedFile]] = {}
    try:
        for name, value in form.multi_items():
            modality, _, role = name.rpartition(".")
            if role not in ROLES or not modality:
                raise UploadError(f"unexpected form field {name!r}; expected MODALITY.image and MODALITY.mask")
            if not isinstance(value, UploadFile):
                raise UploadError(f"form field {name!r} holds text, not a file")
            content = await value.read()
            if not value.filename and not content:
                continue  # a file input left empty
            uploads.setdefault(modality, {})[role] = UploadedFile(value.filename or role, content)
    finally:
        await form.close()
    return uploads
