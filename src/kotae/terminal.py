"""`kotae run MODEL`: a chat in the terminal, streamed, through the public API. It uses the
server already listening on the configured port, or starts one for the chat (and stops it
after). Its API key is made for this chat and revoked when it ends."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO

import httpx

from kotae.config import Settings, reachable_host
from kotae.errors import BackendError
from kotae.storage.repositories.projects import ProjectRepository

BYE = ("/bye", "/exit", "/quit")
START_SECONDS = 120


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(origin: str) -> bool:
    try:
        return httpx.get(f"{origin}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def server_for(settings: Settings, model: str, base_url: str | None) -> Iterator[str]:
    """The API's base URL: `base_url`, the configured server if one answers, or a server
    started for this chat on a free loopback port (stopped on the way out)."""
    if base_url:
        yield base_url.rstrip("/")
        return
    origin = f"http://{reachable_host(settings.host)}:{settings.port}"
    if _up(origin):
        yield f"{origin}/v1"
        return
    port = _free_port()
    print(f"kotae: no server on {origin}; starting one for {model} ...", file=sys.stderr)
    with tempfile.TemporaryFile("w+") as log:
        command = [sys.executable, "-m", "kotae", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--model", model, "--log-level", "warning"]
        proc = subprocess.Popen(
            [*command, "--no-access-log"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait(proc, f"http://127.0.0.1:{port}", log)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait(proc: subprocess.Popen[bytes], origin: str, log: IO[str]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            last = (log.read().strip().splitlines() or ["(no output)"])[-1]
            raise BackendError(f"The server for the chat did not start: {last}")
        if _up(origin):
            # A first start prints the default project's key once: shown, not lost in the log.
            log.seek(0)
            for line in log.read().splitlines():
                if line.startswith("OPENAI_API_KEY="):
                    print(
                        "kotae: first start; the default project's key (shown once):",
                        file=sys.stderr,
                    )
                    print(line, file=sys.stderr)
            log.seek(0, 2)
            return
        time.sleep(0.2)
    raise BackendError(f"The server for the chat did not answer in {START_SECONDS} s.")


def chat(
    base_url: str,
    key: str,
    model: str,
    prompts: Iterator[str],
    *,
    max_output_tokens: int | None,
    out: IO[str],
) -> int:
    """Each prompt a turn of one thread (`previous_response_id`), its answer streamed."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=600)
    previous: str | None = None
    turns = 0
    for prompt in prompts:
        if prompt.strip() in BYE:
            break
        if not prompt.strip():
            continue
        try:
            stream = client.responses.create(
                model=model,
                input=prompt,
                stream=True,
                previous_response_id=previous,
                max_output_tokens=max_output_tokens,
            )
            for event in stream:
                if event.type == "response.output_text.delta":
                    out.write(event.delta)
                    out.flush()
                elif event.type in ("response.completed", "response.incomplete"):
                    previous = event.response.id
                    if event.type == "response.incomplete" and event.response.incomplete_details:
                        out.write(f"\n[incomplete: {event.response.incomplete_details.reason}]")
                elif event.type in ("response.failed", "error"):
                    raise BackendError(_failure(event))
        except openai.APIError as exc:
            raise BackendError(f"The server refused the turn: {exc.message}") from exc
        out.write("\n")
        out.flush()
        turns += 1
    return turns


def _failure(event: object) -> str:
    response = getattr(event, "response", None)
    error = getattr(response, "error", None) or event
    return f"The answer failed: {getattr(error, 'message', error)}"


def prompts_from(first: str | None, stdin: IO[str]) -> Iterator[str]:
    """The prompt on the command line (one turn), else lines typed at `>>> ` (or piped in)."""
    if first is not None:
        yield first
        return
    interactive = stdin.isatty()
    if interactive:
        print("kotae: type a message, /bye to leave.", file=sys.stderr)
    while True:
        if interactive:
            print(">>> ", end="", flush=True, file=sys.stderr)
        line = stdin.readline()
        if not line:
            return
        yield line.rstrip("\n")


def run(
    settings: Settings,
    projects: ProjectRepository,
    model: str,
    prompt: str | None,
    *,
    project: str,
    base_url: str | None,
    max_output_tokens: int | None,
) -> int:
    key, info = projects.create_key(project, name="kotae run")
    try:
        with server_for(settings, model, base_url) as url:
            chat(
                url,
                key,
                model,
                prompts_from(prompt, sys.stdin),
                max_output_tokens=max_output_tokens,
                out=sys.stdout,
            )
    except KeyboardInterrupt:
        print(file=sys.stderr)
    finally:
        projects.revoke(info.id)
    return 0
