"""OCI distribution errors as typed exceptions, rendered as the JSON error body in one place."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse


class OciError(Exception):
    status = 400
    code = "UNKNOWN"

    def __init__(self, message: str, detail: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if status is not None:
            self.status = status

    def response(self, head: bool = False) -> HttpResponse:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        body = json.dumps({"errors": [error]}).encode()
        resp = HttpResponse(b"" if head else body, status=self.status)
        resp["Content-Type"] = "application/json"
        resp["Content-Length"] = str(len(body))
        return resp


class BlobUnknown(OciError):
    status = 404
    code = "BLOB_UNKNOWN"


class ManifestUnknown(OciError):
    status = 404
    code = "MANIFEST_UNKNOWN"


class NameUnknown(OciError):
    status = 404
    code = "NAME_UNKNOWN"


class NameInvalid(OciError):
    status = 404
    code = "NAME_INVALID"


class DigestInvalid(OciError):
    status = 404
    code = "DIGEST_INVALID"


class Unsupported(OciError):
    status = 405
    code = "UNSUPPORTED"


class Unauthorized(OciError):
    status = 401
    code = "UNAUTHORIZED"


class RangeNotSatisfiable(OciError):
    status = 416
    code = "RANGE_INVALID"  # distribution's code for an unusable range; 416 + bytes */size


class Unavailable(OciError):
    """The local store (containerd) cannot be reached: a server fault, not a miss."""

    status = 503
    code = "UNAVAILABLE"


class InternalError(OciError):
    status = 500
    code = "UNKNOWN"


class NotFound(OciError):
    """Any path outside the API on the registry port."""

    status = 404
    code = "NOT_FOUND"
