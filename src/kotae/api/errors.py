"""Every error leaves as OpenAI's envelope: {"error": {message, type, param, code}}."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kotae.api.bounded import shown
from kotae.errors import KotaeError, is_disk_full
from kotae.ids import ID_PATTERNS, wrong_prefix

log = logging.getLogger("kotae")


class ErrorResponse(JSONResponse):
    """An error body renders whatever the client sent, keys included: text that UTF-8 cannot
    hold (an unpaired surrogate) is written as U+FFFD instead of failing with a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        )
        return shown(text).encode("utf-8")


def envelope(
    status: int, message: str, type_: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return ErrorResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        status_code=status,
    )


def error_body(exc: KotaeError) -> dict[str, Any]:
    return {
        "error": {
            "message": exc.message,
            "type": exc.error_type,
            "param": exc.param,
            "code": exc.code,
        }
    }


def validation_to_envelope(errors: list[Any]) -> JSONResponse:
    err = errors[0] if errors else {"loc": (), "msg": "Invalid request", "type": ""}
    # A union's members fail one by one (`input` as a string, then as a list): the member
    # that got furthest into the value tells where it is wrong.
    field = tuple(err.get("loc", ()))[:2]
    same = [e for e in errors if tuple(e.get("loc", ()))[:2] == field]
    err = max(same, key=lambda e: _depth(e.get("loc", ())), default=err)
    loc = [str(p) for p in err.get("loc", ())]
    where = loc[0] if loc else ""
    if where in ("body", "path", "query", "header"):
        loc = loc[1:]
    # Discriminated unions add the tag to the path; OpenAI names the field only.
    param = _param_path(loc)
    if err.get("type") == "json_invalid":
        # Truncated or broken JSON: the position is not a parameter.
        return envelope(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
            "invalid_request_error",
            None,
            None,
        )
    ctx = err.get("ctx")
    pattern = str(ctx.get("pattern")) if isinstance(ctx, dict) else ""
    prefix = ID_PATTERNS.get(pattern) if err.get("type") == "string_pattern_mismatch" else None
    if prefix is not None:
        return envelope(
            400,
            wrong_prefix(param, err.get("input"), prefix),
            "invalid_request_error",
            param,
            "invalid_value",
        )
    if err.get("type") == "extra_forbidden":
        return envelope(
            400,
            f"Unknown parameter: '{param}'.",
            "invalid_request_error",
            param,
            "unknown_parameter",
        )
    if err.get("type") == "missing":
        return envelope(
            400,
            f"Missing required parameter: '{param}'.",
            "invalid_request_error",
            param,
            "missing_required_parameter",
        )
    if err.get("type") == "model_attributes_type" and not loc:
        return envelope(
            400,
            "We could not parse the JSON body of your request. The body must be a JSON object.",
            "invalid_request_error",
            None,
            None,
        )
    return envelope(
        400,
        f"Invalid value for '{param}': {err.get('msg')}.",
        "invalid_request_error",
        param or None,
        "invalid_value",
    )


def _depth(loc: Any) -> int:
    # Union member names ("list[...]", "str") are not steps into the value.
    return sum(1 for p in loc if not (isinstance(p, str) and (p in TYPE_TAGS or "[" in p)))


# Names pydantic gives the members of a union (`input.str`): types, not fields.
TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none", "null", "bytes"}


def _param_path(loc: list[str]) -> str:
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        elif any(c in part for c in "[](), ") or part in TYPE_TAGS:
            continue  # a union member's type name, not a field
        else:
            out += f".{part}" if out else part
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(KotaeError)
    async def _kotae(_: Request, exc: KotaeError) -> JSONResponse:
        headers = getattr(exc, "headers", None)  # a rate limit's retry-after
        return ErrorResponse(error_body(exc), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_to_envelope(list(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> JSONResponse:
        return validation_to_envelope(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        message = str(exc.detail)
        if exc.status_code == 404:  # OpenAI's wording, naming what was asked
            message = f"Invalid URL ({request.method} {request.url.path})"
        elif exc.status_code == 405:
            message = "Method not allowed for this URL."
        response = envelope(exc.status_code, message, type_)
        response.headers.update(exc.headers or {})  # 405's Allow
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_disk_full(exc):
            log.error("the disk is full: %s", exc)
            return envelope(
                507,
                "The server's storage is full: the request was not carried out. "
                "Free space and retry.",
                "server_error",
                None,
                "storage_full",
            )
        log.exception("unhandled error", exc_info=exc)
        return envelope(
            500, "The server had an error while processing your request.", "server_error"
        )
