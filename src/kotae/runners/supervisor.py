"""The parent side of an engine runner: starts the child, sends it calls, restarts it.

A runner that dies (SIGSEGV in native code, the OOM killer, kill -9) fails only the calls it
was serving, with EngineUnavailable; it is started again after a backoff that doubles with
each crash in a row. One that cannot start (a corrupt model file) is reported as unavailable
and tried again only when a request comes after the backoff."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Literal

from kotae.errors import EngineUnavailable
from kotae.providers.inference.base import CancelToken
from kotae.runners import wire

log = logging.getLogger("kotae.runners")

State = Literal["stopped", "starting", "ready", "restarting", "unavailable"]
MIN_BACKOFF, MAX_BACKOFF = 0.5, 30.0
STABLE_SECONDS = 60.0  # up this long, the next crash starts the backoff again


def exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "it stopped answering"
    if returncode < 0:
        try:
            return f"it was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"it was killed by signal {-returncode}"
    return f"it exited with status {returncode}"


class Runner:
    def __init__(
        self,
        name: str,
        target: str,
        config: dict[str, Any],
        *,
        crash_hint: str = "",
        start_timeout: float = 600.0,
    ) -> None:
        self.name = name
        self.target = target
        self.config = config
        self.crash_hint = crash_hint
        self.state: State = "stopped"
        self.reason: str | None = None  # why it is down
        self.restarts = 0
        self.pid: int | None = None
        self.info: dict[str, Any] = {}
        self._start_timeout = start_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._calls: dict[int, asyncio.Queue[tuple[Any, ...]]] = {}
        self._next_id = 0
        self._starting: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._crashes = 0
        self._retry_at = 0.0
        self._up_since = 0.0
        self._output: deque[str] = deque(maxlen=40)
        self._closed = False

    # -- life cycle ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "pid": self.pid,
            "restarts": self.restarts,
            "in_flight": len(self._calls),
        }

    async def ensure_started(self) -> None:
        if self.state == "ready":
            return
        if self._closed:
            raise EngineUnavailable(f"The engine for '{self.name}' is shut down.")
        if self._starting is None or self._starting.done():
            if self.state == "unavailable" and time.monotonic() < self._retry_at:
                raise self._unavailable()
            self._starting = self._spawn_start(0.0)
        await asyncio.shield(self._starting)

    def start_soon(self) -> None:
        """Start in the background (at server start: load and self-test before the first
        request needs it)."""
        if self.state == "stopped" and self._starting is None:
            self._starting = self._spawn_start(0.0)
            # Its failure is kept in state/reason; nobody awaits this one.
            self._starting.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _spawn_start(self, delay: float) -> asyncio.Future[None]:
        task = asyncio.ensure_future(self._start(delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _unavailable(self) -> EngineUnavailable:
        return EngineUnavailable(
            f"The engine for '{self.name}' is unavailable: {self.reason}.",
            code="engine_unavailable",
        )

    async def _start(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self.state = "starting" if self.state in ("stopped", "unavailable") else self.state
        parent_end, child_end = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "kotae.runners.host",
                self.target,
                json.dumps(self.config),
                str(child_end.fileno()),
                str(os.getpid()),
                pass_fds=[child_end.fileno()],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                # Its own session: a terminal's Ctrl-C goes to the server, which stops it.
                start_new_session=True,
            )
        finally:
            child_end.close()
        self._proc, self.pid = proc, proc.pid
        self._output.clear()
        output = asyncio.ensure_future(self._collect_output(proc))
        self._tasks.add(output)
        output.add_done_callback(self._tasks.discard)
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        try:
            first = await asyncio.wait_for(wire.receive(reader), self._start_timeout)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            # Killed only if it still runs: Popen.kill() reaps a dead child first, which
            # hides its exit status (the signal that killed it) from asyncio's watcher.
            try:
                code = await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                code = await proc.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(output), 2)  # its last lines
            self._down(f"its process failed while starting: {exit_reason(code)}", code)
            raise self._unavailable() from None
        if first[0] == "start_failed":
            writer.close()
            await proc.wait()
            self._down(wire.decode_error(first[1]).message, None)
            raise self._unavailable()
        self.info = first[1]
        self._writer = writer
        self.state, self.reason = "ready", None
        self._up_since = time.monotonic()
        log.info("engine %s ready (pid %d)", self.name, proc.pid)
        reading = asyncio.ensure_future(self._read(reader, proc, output))
        self._tasks.add(reading)
        reading.add_done_callback(self._tasks.discard)

    def _down(self, reason: str, returncode: int | None) -> None:
        crashed = returncode is not None and returncode < 0
        hint = f" {self.crash_hint}" if crashed and self.crash_hint else ""
        self.state, self.reason = "unavailable", reason + hint
        self._crashes += 1
        self._retry_at = time.monotonic() + self._backoff()
        tail = "\n".join(self._output)
        log.error(
            "engine %s could not start: %s%s", self.name, self.reason, f"\n{tail}" * bool(tail)
        )

    def _backoff(self) -> float:
        return float(min(MAX_BACKOFF, MIN_BACKOFF * 2 ** max(0, self._crashes - 1)))

    async def _collect_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            text = line.decode("utf-8", "replace").rstrip()
            self._output.append(text)
            log.debug("engine %s: %s", self.name, text)

    async def _read(
        self,
        reader: asyncio.StreamReader,
        proc: asyncio.subprocess.Process,
        output: asyncio.Future[None],
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
            while True:
                message = await wire.receive(reader)
                queue = self._calls.get(message[1])
                if queue is not None:
                    queue.put_nowait(message)
        code = await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(output), 2)  # its last lines, for the log
        if self._closed or self._proc is not proc:
            return
        self._crashed(code)

    def _crashed(self, returncode: int | None) -> None:
        reason = exit_reason(returncode)
        if time.monotonic() - self._up_since > STABLE_SECONDS:
            self._crashes = 0
        self._crashes += 1
        self.restarts += 1
        hint = f" {self.crash_hint}" if returncode is not None and returncode < 0 else ""
        self.state, self.reason = "restarting", f"its process crashed ({reason}){hint}"
        self._writer, self._proc = None, None
        delay = self._backoff()
        tail = "\n".join(self._output)
        log.error(
            "engine %s crashed (%s); %d request(s) failed; restarting in %.1fs%s",
            self.name,
            reason,
            len(self._calls),
            delay,
            f"\n{tail}" * bool(tail),
        )
        error = wire.encode_error(
            EngineUnavailable(
                f"The engine for '{self.name}' crashed while serving this request ({reason}) "
                "and is restarting; retry the request.",
                code="engine_crashed",
            )
        )
        for call_id, queue in self._calls.items():
            queue.put_nowait(("error", call_id, error))
        self._starting = self._spawn_start(delay)
        self._starting.add_done_callback(lambda f: f.cancelled() or f.exception())

    # -- calls ---------------------------------------------------------------------------------

    def _open_call(self) -> tuple[int, asyncio.Queue[tuple[Any, ...]]]:
        self._next_id += 1
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._calls[self._next_id] = queue
        return self._next_id, queue

    async def _send(self, message: tuple[Any, ...]) -> None:
        writer = self._writer
        if writer is None:
            raise self._unavailable()
        try:
            await wire.send(writer, message)
        except (ConnectionError, OSError) as exc:
            raise EngineUnavailable(
                f"The engine for '{self.name}' went away; retry the request.",
                code="engine_crashed",
            ) from exc

    async def call(self, method: str, *args: Any) -> Any:
        """One call's answer. A call the engine died on before answering is sent once more
        to the restarted engine (calls are questions, safe to ask again)."""
        for attempt in (1, 2):
            await self.ensure_started()
            call_id, queue = self._open_call()
            try:
                await self._send(("call", call_id, method, args))
                message = await queue.get()
            finally:
                self._calls.pop(call_id, None)
            if message[0] == "return":
                return message[2]
            error = wire.decode_error(message[2])
            if attempt == 1 and _crashed(error):
                log.warning("engine %s: retrying a call it died on before answering", self.name)
                continue
            raise error
        raise AssertionError("unreachable")

    async def stream(
        self, method: str, *args: Any, cancel: CancelToken | None = None
    ) -> AsyncIterator[Any]:
        """The child's items; ended early (or `cancel` set), the child is told to stop. A
        request the engine died on while it only waited (no item yet) is sent once more to
        the restarted engine; one that had begun to answer fails."""
        retried = False
        while True:
            await self.ensure_started()
            given = False
            try:
                async for item in self._stream_once(method, args, cancel):
                    given = True
                    yield item
                return
            except EngineUnavailable as exc:
                if given or retried or not _crashed(exc) or (cancel and cancel.cancelled):
                    raise
                retried = True
                log.warning("engine %s: retrying a request that was still waiting", self.name)

    async def _stream_once(
        self, method: str, args: tuple[Any, ...], cancel: CancelToken | None
    ) -> AsyncIterator[Any]:
        call_id, queue = self._open_call()
        writer = self._writer
        finished = False

        def stop() -> None:
            if not finished and writer is self._writer and writer is not None:
                with contextlib.suppress(Exception):
                    wire.send_nowait(writer, ("cancel", call_id))

        try:
            await self._send(("call", call_id, method, args))
            if cancel is not None:
                loop = asyncio.get_running_loop()

                def from_any_thread() -> None:
                    loop.call_soon_threadsafe(stop)

                cancel.on_cancel(from_any_thread)
            while True:
                message = await queue.get()
                if message[0] == "item":
                    yield message[2]
                    continue
                finished = True
                if message[0] == "return":
                    return
                raise wire.decode_error(message[2])
        finally:
            stop()
            finished = True
            self._calls.pop(call_id, None)

    async def close(self) -> None:
        self._closed = True
        self.state = "stopped"
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        proc, writer = self._proc, self._writer
        self._proc = self._writer = None
        if writer is not None:
            writer.close()  # the child exits when its end of the socket closes
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in list(self._tasks):
            task.cancel()


def _crashed(error: Exception) -> bool:
    """Whether `error` is the engine dying under a call (not a refusal of the call itself)."""
    return isinstance(error, EngineUnavailable) and getattr(error, "code", None) == "engine_crashed"
