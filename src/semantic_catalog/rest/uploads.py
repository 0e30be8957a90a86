"""Uploads streamed to disk: the import endpoints take a file as a raw body or as a multipart form, and
neither is ever read whole into memory (``request.body`` would refuse anything above Django's
DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by default, about 1,000 vector rows). Django's upload handlers spool
the bytes to a temporary file above FILE_UPLOAD_MAX_MEMORY_SIZE; SEMANTIC_CATALOG["MAX_UPLOAD_BYTES"]
caps the size, checked on the declared length before anything is read and again on every chunk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from rest_framework.parsers import FileUploadParser, MultiPartParser
from rest_framework.request import Request

from semantic_catalog.conf import semantic_settings
from semantic_catalog.engine.errors import InvalidQuery, SemanticCatalogError

FORM_FIELD = "file"  # the multipart field that carries the file (a form with one file may name it otherwise)


class UploadTooLarge(SemanticCatalogError):
    """The upload is larger than MAX_UPLOAD_BYTES; the API answers 413."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"The upload is larger than this server accepts ({limit} bytes, SEMANTIC_CATALOG['MAX_UPLOAD_BYTES']): "
            "raise that setting, or import the file on the server with `manage.py semantic_import`."
        )


class SizeLimitHandler(FileUploadHandler):
    """First in the chain of upload handlers: refuses an upload over the limit, passes every chunk on."""

    def __init__(self, request: Any = None, limit: int = 0) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0  # over every file of a multipart form

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: str | None = None
    ) -> None:
        if content_length and content_length > self.limit:
            raise UploadTooLarge(self.limit)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            raise UploadTooLarge(self.limit)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) holds the file


class RawBodyParser(FileUploadParser):
    """The whole body is the file, whatever its media type (DRF's FileUploadParser without a file name:
    the server names the file itself, so a caller's name never reaches the disk or a message)."""

    def get_filename(self, stream: Any, media_type: Any, parser_context: Any) -> str:
        return "upload"


class StreamedUploads:
    """Mixin for an import view (before its APIView base): the body is parsed as a multipart form or as
    the raw file, through the size check, before authentication can touch it (a session's CSRF check
    reads forms)."""

    parser_classes = [MultiPartParser, RawBodyParser]

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        request.upload_handlers = [
            SizeLimitHandler(request, semantic_settings.MAX_UPLOAD_BYTES),
            *request.upload_handlers,
        ]
        return super().initialize_request(request, *args, **kwargs)  # type: ignore[misc]


def received(request: Request, empty: str) -> UploadedFile:
    """The request's file (the raw body, or the multipart field ``file``, or a form's only file), on
    disk or in memory as Django's handlers kept it; ``InvalidQuery(empty)`` when there is none."""
    files = request.FILES
    upload = files.get(FORM_FIELD)
    if upload is None:
        names = list(files)
        if len(names) > 1:
            raise InvalidQuery(f"Send one file (the form field {FORM_FIELD!r}), not {len(names)}.")
        upload = files[names[0]] if names else None
    if upload is None or not upload.size:
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # WSGI passes a body on only with a Content-Length: a chunked one arrives empty
            raise InvalidQuery(
                "The body came chunked (Transfer-Encoding: chunked), which this server cannot read: send it "
                "with a Content-Length (upload a file, not a stream)."
            )
        raise InvalidQuery(empty)
    return upload


def save_upload(request: Request, target: Path, empty: str) -> Path:
    """Copy the request's file (see ``received``) to ``target`` chunk by chunk."""
    upload = received(request, empty)
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    upload.close()
    return target
