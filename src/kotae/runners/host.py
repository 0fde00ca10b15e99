"""The child side of an engine runner: `python -m kotae.runners.host TARGET CONFIG FD PARENT`.

It builds the target (which loads and self-tests its model), says "ready" over the socket
`FD`, then serves calls until the parent closes its end or dies; then it exits at once, in
the middle of a decode if need be."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from kotae.providers.inference.base import CancelToken
from kotae.runners import wire
from kotae.runners.lifeline import die_with_parent
from kotae.runners.targets import TARGETS, Target

FAULT_ON_START = "KOTAE_TEST_RUNNER_CRASH_ON_START"  # a target name; for tests only


async def serve(target_name: str, config: dict[str, Any], sock: socket.socket) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        target: Target = TARGETS[target_name](config)
        info = await target.start()
        if os.environ.get(FAULT_ON_START) == target_name:
            os.kill(os.getpid(), signal.SIGSEGV)  # tests: a native crash in the self-test
    except Exception as exc:
        await wire.send(writer, ("start_failed", wire.encode_error(exc)))
        writer.close()
        return
    await wire.send(writer, ("ready", info))
    tokens: dict[int, CancelToken] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def run(call_id: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            if method in target.streams:
                token = tokens[call_id]
                async for item in getattr(target, method)(*args, token):
                    await wire.send(writer, ("item", call_id, item))
                await wire.send(writer, ("return", call_id, None))
            elif method in target.calls:
                result = await getattr(target, method)(*args)
                await wire.send(writer, ("return", call_id, result))
            else:
                raise ValueError(f"unknown method {method!r}")
        except (ConnectionError, OSError):
            os._exit(0)  # the parent is gone
        except Exception as exc:
            with contextlib.suppress(ConnectionError, OSError):
                await wire.send(writer, ("error", call_id, wire.encode_error(exc)))
        finally:
            tokens.pop(call_id, None)

    spawn: Callable[[Any], asyncio.Task[None]] = asyncio.ensure_future
    while True:
        try:
            message = await wire.receive(reader)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            os._exit(0)  # the parent closed its end or died: nothing is left to answer
        if message[0] == "call":
            # The token exists before the task runs: a cancel right behind the call counts.
            tokens[message[1]] = CancelToken()
            task = spawn(run(message[1], message[2], message[3]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif message[0] == "cancel" and message[1] in tokens:
            tokens[message[1]].cancel()


def main() -> None:
    target_name, config, fd, parent = sys.argv[1:5]
    die_with_parent(int(parent))
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
    sock = socket.socket(fileno=int(fd))
    asyncio.run(serve(target_name, json.loads(config), sock))


if __name__ == "__main__":
    main()
