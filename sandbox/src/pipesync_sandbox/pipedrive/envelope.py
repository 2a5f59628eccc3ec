"""Pipedrive's response envelopes: ``{"success": true, "data": …}`` and its error twin."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

ERROR_INFO = "Please check developers.pipedrive.com"
VALIDATION_FAILED = "ERR_SCHEMA_VALIDATION_FAILED"  # v2's code for a rejected parameter or body field


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one encoder: dumps() builds one per call


def json_bytes(content: Any) -> bytes:
    """Compact UTF-8 JSON, as Pipedrive sends it (non-ASCII names stay readable)."""
    return _ENCODER.encode(content).encode()


class PipedriveJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


class ApiError(Exception):
    """A request Pipedrive would refuse; rendered as its error envelope."""

    def __init__(self, status: int, error: str, *, code: str | None = None, headers: dict[str, str] | None = None,
                 error_code_field: bool = False):
        super().__init__(error)
        self.status = status
        self.error = error
        self.code = code
        self.headers = headers or {}
        self.error_code_field = error_code_field  # the 401 body carries "errorCode" instead of data/additional_data

    def response(self) -> Response:
        return error_response(self.status, self.error, code=self.code, headers=self.headers,
                              error_code_field=self.error_code_field)


def invalid(name: str, reason: str) -> ApiError:
    """A 400 for one bad parameter or body field, named in the message."""
    return ApiError(400, f"Validation failed: {name}: {reason}", code=VALIDATION_FAILED)


def ok(data: Any, additional_data: Any = None, *, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional_data is not None:
        body["additional_data"] = additional_data
    body.update(extra)
    return PipedriveJSON(body, headers=headers)


def ok_items(encoded_items: list[bytes], additional_data: Any) -> Response:
    """A list envelope around items already encoded as JSON (see ``Renderer.deal_json``)."""
    body = b"".join((b'{"success":true,"data":[', b",".join(encoded_items), b'],"additional_data":',
                     json_bytes(additional_data), b"}"))
    return Response(body, media_type="application/json")


def error_response(status: int, error: str, *, code: str | None = None, headers: dict[str, str] | None = None,
                   error_code_field: bool = False) -> Response:
    body: dict[str, Any] = {"success": False, "error": error}
    if error_code_field:
        body["errorCode"] = status
    if code:
        body["code"] = code
    body["error_info"] = ERROR_INFO
    if not error_code_field:
        body["data"] = None
        body["additional_data"] = None
    return PipedriveJSON(body, status_code=status, headers=headers)
