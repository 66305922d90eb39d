"""Errors the server answers with, in OpenAI's shape:
``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """A request the server refuses or cannot answer: an HTTP status and an OpenAI error."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body of the reply."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


def bad_request(message: str, param: str | None = None,
                code: str | None = "invalid_value") -> ApiError:
    """A 400 for a request that is malformed or asks for more than the server allows."""
    return ApiError(400, message, param=param, code=code)


def unavailable(message: str, code: str, retry_after: int | None = None) -> ApiError:
    """A 503: the server is busy, timed out or is shutting down (worth retrying)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return ApiError(503, message, kind="server_error", code=code, headers=headers)
