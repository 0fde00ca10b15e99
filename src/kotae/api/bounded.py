"""JSON bodies bounded before they are parsed into models.

A body's shape is checked on the raw JSON before any model sees it: nesting depth, keys an
object, entries an array (and a route's own caps, like OpenAI's 2,048 embeddings inputs), and
text that cannot be stored (an unpaired surrogate). Small bodies are checked here; a large one
is parsed and checked in a child process, so a hostile body's parse neither holds this
process's event loop (json.loads keeps the GIL for its whole run) nor grows its memory. A body
that passes is parsed again off the event loop and handed to FastAPI already parsed."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from kotae.errors import InvalidRequest
from kotae.schemas.common import SURROGATE

# Bodies larger than this are checked in the child process.
CHILD_BYTES = 256 * 1024
MAX_DEPTH = 64
MAX_KEYS = 10_000  # keys of one object
MAX_ITEMS = 100_000  # entries of one array
# Per route: the arrays with OpenAI's own, smaller caps (the embeddings inputs).
ROUTE_CAPS: dict[str, dict[str, int]] = {"/v1/embeddings": {"input": 2048}}
MAX_TOKENS_AN_INPUT = 8192  # a token array in embeddings input

Problem = tuple[str, str | None, str]  # message, param, code
TOO_DEEP: Problem = (f"The body nests deeper than {MAX_DEPTH} levels.", None, "too_deep")


def shown(text: str) -> str:
    """Text fit to be written back: unpaired surrogates become U+FFFD."""
    return SURROGATE.sub("\ufffd", text)


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{shown(key)}" if parent else shown(key)


def check_shape(body: Any, route: str) -> Problem | None:
    """The first way `body` is out of bounds, or None. Iterative: no recursion limit to hit."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return (TOO_DEEP[0], path or None, TOO_DEEP[2])
        if isinstance(value, str):
            if SURROGATE.search(value):
                return (
                    "Text in the body holds an unpaired surrogate (invalid Unicode).",
                    path or None,
                    "invalid_unicode",
                )
        elif isinstance(value, dict):
            if len(value) > MAX_KEYS:
                return (
                    f"An object may hold at most {MAX_KEYS} keys.",
                    path or None,
                    "too_many_keys",
                )
            for key, item in value.items():
                if SURROGATE.search(key):
                    return (
                        "A key in the body holds an unpaired surrogate (invalid Unicode).",
                        _path(path, key),
                        "invalid_unicode",
                    )
                stack.append((item, _path(path, key), depth + 1))
        elif isinstance(value, list):
            cap, what = _array_cap(route, path, value)
            if len(value) > cap:
                return (
                    f"'{path or 'body'}' may hold at most {cap} {what}.",
                    path or None,
                    "too_many",
                )
            stack.extend((item, _path(path, i), depth + 1) for i, item in enumerate(value))
    return None


def _array_cap(route: str, path: str, value: list[Any]) -> tuple[int, str]:
    """How many entries the array at `path` may hold, and what they are called: a token
    array in embeddings input (the whole input, or one entry of it) holds a model's input."""
    embeddings_input = route == "/v1/embeddings" and (
        path.startswith("input[") or (path == "input" and _all_ints(value))
    )
    if embeddings_input:
        return MAX_TOKENS_AN_INPUT, "tokens"
    return ROUTE_CAPS.get(route, {}).get(path, MAX_ITEMS), "entries"


def _all_ints(values: list[Any]) -> bool:
    return bool(values) and all(type(v) is int for v in values[:16])


def check_raw(raw: bytes, route: str) -> Problem | None:
    """Parse and check (in the child process): a problem, or None when the body is sound.
    Broken JSON is left to FastAPI, which answers it as OpenAI does."""
    try:
        body = json.loads(raw)
    except RecursionError:
        return TOO_DEEP
    except ValueError:
        return None
    return check_shape(body, route)


class _Checker:
    """One child process, started on first use and again if it dies (a body that exhausted
    its memory): large bodies wait their turn for it, off the event loop."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=context,
                    initializer=_die_with,  # the server, even one killed with -9
                    initargs=(os.getpid(),),
                )
            return self._pool

    async def check(self, raw: bytes, route: str) -> Problem | None:
        pool = self._executor()
        try:
            return await asyncio.wrap_future(pool.submit(check_raw, raw, route))
        except BrokenProcessPool:
            with self._lock:
                self._pool = None
            return ("The request body is too complex to read.", None, "body_too_complex")

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def _die_with(parent: int) -> None:
    from kotae.runners.lifeline import die_with_parent

    die_with_parent(parent)


CHECKER = _Checker()


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return request.method in ("POST", "PUT", "PATCH") and (not kind or "json" in kind)


class BoundedRoute(APIRoute):
    """A route whose JSON body is bounded (above) before FastAPI validates it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        route = self.path_format
        annotation = self.body_field.field_info.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )

        async def bounded(request: Request) -> Response:
            if _is_json(request):
                raw = await request.body()
                if raw:
                    await _parse_bounded(request, raw, route, model)
            return await handler(request)

        return bounded


async def _parse_bounded(
    request: Request, raw: bytes, route: str, model: type[BaseModel] | None
) -> None:
    large = len(raw) > CHILD_BYTES
    problem = await CHECKER.check(raw, route) if large else None
    if problem is None:
        try:
            if large:
                parsed = await asyncio.to_thread(_parse_and_validate, raw, model)
            else:
                parsed = json.loads(raw)
                problem = check_shape(parsed, route)
        except RecursionError:  # deeper than Python's own parser goes
            problem = TOO_DEEP
        except ValueError:
            return  # FastAPI answers broken JSON itself
    if problem is not None:
        message, param, code = problem
        raise InvalidRequest(message, param=param, code=code)
    # Starlette's Request.json() keeps what it parsed here: FastAPI does not parse it again
    # (and a model validated here is accepted as it is).
    request._json = parsed


NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


async def load_bounded(raw: bytes, route: str) -> Any:
    """A message that is not an HTTP body (a WebSocket event): parsed under the same bounds,
    or an InvalidRequest."""
    large = len(raw) > CHILD_BYTES
    problem = await CHECKER.check(raw, route) if large else None
    parsed: Any = None
    if problem is None:
        try:
            parsed = await asyncio.to_thread(json.loads, raw) if large else json.loads(raw)
            problem = None if large else check_shape(parsed, route)
        except RecursionError:
            problem = TOO_DEEP
        except ValueError:
            raise InvalidRequest(NOT_JSON) from None
    if problem is not None:
        message, param, code = problem
        raise InvalidRequest(message, param=param, code=code)
    return parsed


def _parse_and_validate(raw: bytes, model: type[BaseModel] | None) -> Any:
    """A large body parsed, and validated into its model, off the event loop; a body that
    does not validate is left to FastAPI, which words the 400 (bounded, it is quick)."""
    parsed = json.loads(raw)
    if model is not None and isinstance(parsed, dict):
        try:
            return model.model_validate(parsed)
        except ValidationError:
            return parsed
    return parsed
