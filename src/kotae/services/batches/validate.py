"""An input file checked line by line, as OpenAI checks it before a batch starts: each line a
JSON object {custom_id, method, url, body}, the batch's endpoint and one model throughout,
custom_ids unique, at most 50,000 lines. Every bad line is named; any makes the batch fail."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
MAX_ERRORS = 100  # errors listed in the batch's `errors.data`


def _error(code: str, message: str, line: int | None, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def read_lines(
    chunks: Iterator[bytes], endpoint: str, model_ok: Callable[[str], str | None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """(lines to store, errors, the batch's model). `model_ok(name)` says why a model cannot
    be used, or None."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None
    checked: dict[str, str | None] = {}
    for number, raw in enumerate(_split(chunks), start=1):
        if len(errors) >= MAX_ERRORS:
            break
        if not raw.strip():
            continue
        if len(lines) >= MAX_LINES:
            errors.append(
                _error("too_many_requests", f"A batch holds at most {MAX_LINES} requests.", number)
            )
            break
        try:
            item = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            errors.append(_error("invalid_json_line", "This line is not valid JSON.", number))
            continue
        if not isinstance(item, dict):
            errors.append(_error("invalid_json_line", "Each line must be a JSON object.", number))
            continue
        custom_id = item.get("custom_id")
        body = item.get("body")
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
            errors.append(
                _error(
                    "missing_required_parameter", "custom_id must be a string.", number, "custom_id"
                )
            )
            continue
        if item.get("method") != "POST":
            errors.append(_error("invalid_method", "method must be POST.", number, "method"))
            continue
        if item.get("url") != endpoint:
            errors.append(
                _error(
                    "mismatched_endpoint",
                    f"The url '{item.get('url')}' is not the batch's endpoint '{endpoint}'.",
                    number,
                    "url",
                )
            )
            continue
        if not isinstance(body, dict):
            errors.append(
                _error("missing_required_parameter", "body must be an object.", number, "body")
            )
            continue
        if custom_id in seen:
            errors.append(
                _error(
                    "duplicate_custom_id",
                    f"The custom_id '{custom_id}' is used by an earlier line.",
                    number,
                    "custom_id",
                )
            )
            continue
        seen.add(custom_id)
        name = body.get("model")
        if not isinstance(name, str) or not name:
            errors.append(
                _error(
                    "missing_required_parameter", "body.model is required.", number, "body.model"
                )
            )
            continue
        if name not in checked:
            checked[name] = model_ok(name)
        if checked[name] is not None:
            errors.append(_error("model_not_found", str(checked[name]), number, "body.model"))
            continue
        if model is not None and name != model:
            errors.append(
                _error(
                    "invalid_request",
                    f"Every request of a batch uses one model: this one asks for '{name}', "
                    f"earlier ones for '{model}'.",
                    number,
                    "body.model",
                )
            )
            continue
        model = name
        lines.append({"line": number, "custom_id": custom_id, "request": body})
    if not lines and not errors:
        errors.append(_error("empty_file", "The input file has no requests.", None))
    return lines, errors, model


def _split(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The file's lines, as they stream in."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        yield from whole
    if rest:
        yield rest
