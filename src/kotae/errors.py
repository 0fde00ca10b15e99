"""Typed errors; `api.errors` maps them to OpenAI's envelope in one place."""

from __future__ import annotations

import errno
import re
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError


class KotaeError(Exception):
    status_code = 500
    error_type = "server_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code


class InvalidRequest(KotaeError):
    status_code = 400
    error_type = "invalid_request_error"


def refuse_unknown(raw: Mapping[str, Any], allowed: Collection[str], where: str) -> None:
    """A 400 naming the first key of `raw` (an object at `where`) that is not `allowed`."""
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        raise InvalidRequest(
            f"Unknown parameter: '{where}.{unknown[0]}'.",
            param=f"{where}.{unknown[0]}",
            code="unknown_parameter",
        )


def invalid_from(exc: ValidationError, what: str, where: str) -> InvalidRequest:
    """A pydantic error on part of a request, as a 400 naming the field under `where`."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    return InvalidRequest(f"Invalid {what}: {err['msg']}", param=f"{where}.{field}".strip("."))


class ContextLengthExceeded(InvalidRequest):
    default_code = "context_length_exceeded"


class AuthenticationFailed(KotaeError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDenied(KotaeError):
    status_code = 403
    error_type = "invalid_request_error"


class NotFound(KotaeError):
    status_code = 404
    error_type = "invalid_request_error"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class Conflict(KotaeError):
    status_code = 409
    error_type = "invalid_request_error"


class PayloadTooLarge(KotaeError):
    status_code = 413
    error_type = "invalid_request_error"


class RateLimited(KotaeError):
    status_code = 429
    error_type = "rate_limit_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message, param=param, code=code)
        self.headers = headers or {}


class RequestRateLimited(RateLimited):
    """A project over its requests per minute: OpenAI's type for it is "requests"."""

    error_type = "requests"
    default_code = "rate_limit_exceeded"


def queue_full(what: str, pending: int, limit: int | None = None) -> RateLimited:
    """The 429 of a queue that holds its limit (an embedded engine's, the workers'), with the
    headers OpenAI's 429s carry: when to retry, and the limit it hit."""
    cap = str(limit if limit is not None else pending)
    return RateLimited(
        f"{what} has {pending} requests in its queue; retry shortly.",
        code="rate_limit_exceeded",
        headers={
            "retry-after": "1",
            "x-ratelimit-limit-requests": cap,
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1s",
        },
    )


def queue_full_engine(message: str) -> str | None:
    """Which engine a queue_full message names (for the metrics), or None."""
    found = re.match(r"^(.+) has \d+ requests in its queue; retry shortly\.$", message)
    return found.group(1) if found else None


class ClientGone(KotaeError):
    """The client left before its answer was ready (nginx's 499: nobody reads it)."""

    status_code = 499
    error_type = "invalid_request_error"


class BackendError(KotaeError):
    """The model engine failed (a remote server down, a crash in the runtime)."""

    status_code = 502
    error_type = "server_error"


class EngineUnavailable(KotaeError):
    """An engine runner is down: it crashed (and is restarting) or could not start."""

    status_code = 503
    error_type = "server_error"
    default_code = "engine_unavailable"


class StorageFull(KotaeError):
    """The disk (or the database) is full: nothing of the request was kept."""

    status_code = 507
    error_type = "server_error"
    default_code = "storage_full"


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC anywhere in the chain, or SQLite's own word for it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if "database or disk is full" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
