"""The runner protocol: length-prefixed pickled tuples over a Unix socket pair.

Parent to child: ("call", rid, method, args) and ("cancel", rid).
Child to parent: ("ready", info), ("start_failed", error), ("item", rid, value),
("return", rid, value) and ("error", rid, error). Both ends are kotae's own code, started by
kotae, so pickle carries the dataclasses as they are."""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

from kotae import errors
from kotae.errors import BackendError, KotaeError

_HEADER = struct.Struct("!I")


async def send(writer: asyncio.StreamWriter, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_HEADER.pack(len(data)) + data)
    await writer.drain()


async def receive(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    """The next message; asyncio.IncompleteReadError when the other end is gone."""
    size = _HEADER.unpack(await reader.readexactly(_HEADER.size))[0]
    message: tuple[Any, ...] = pickle.loads(await reader.readexactly(size))
    return message


def encode_error(exc: BaseException) -> dict[str, Any]:
    """A KotaeError keeps its class, param and code; anything else becomes an engine error."""
    if isinstance(exc, KotaeError):
        return {
            "class": type(exc).__name__,
            "message": exc.message,
            "param": exc.param,
            "code": exc.code,
        }
    return {"class": "BackendError", "message": f"{type(exc).__name__}: {exc}", "param": None}


def decode_error(data: dict[str, Any]) -> KotaeError:
    cls = getattr(errors, str(data.get("class")), BackendError)
    if not (isinstance(cls, type) and issubclass(cls, KotaeError)):
        cls = BackendError
    return cls(str(data.get("message")), param=data.get("param"), code=data.get("code"))


def send_nowait(writer: asyncio.StreamWriter, message: tuple[Any, ...]) -> None:
    """Queued on the transport without waiting (from a finally block or a callback)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_HEADER.pack(len(data)) + data)
