"""One fault costs one request: engines run in runner processes that the server supervises.
A runner killed mid-stream fails only its own requests (the stream ends with response.failed),
is restarted, and serves the next request; a model file that cannot load leaves the API up."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL
from tests.helpers import OPS, Server, alive, assert_stream_grammar, children, new_key, wait_until

DEFAULT_ID = "smollm2-135m-instruct"
LONG = "Count from 1 to 500, separated by commas."


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    broken = tmp_path_factory.mktemp("models") / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))  # a GGUF's magic, then nonsense
    models = [{"id": "broken", "backend": "llama_cpp", "path": str(broken)}]
    server = Server(tmp_path_factory.mktemp("faults"), KOTAE_MODELS=json.dumps(models))
    yield server
    server.stop()


def engines(srv: Server) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{srv.port}/ready", headers=OPS).json()
    return dict(body["engines"])


def client(srv: Server, project: str) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, project), max_retries=0)


def test_the_api_process_loads_no_engine(srv: Server) -> None:
    a = client(srv, "loads")
    assert a.responses.create(model=FAST_MODEL, input="hi", max_output_tokens=16).status
    maps = Path(f"/proc/{srv.proc.pid}/maps").read_text()
    for library in ("libllama", "libggml", "libtorch", "onnxruntime"):
        assert library not in maps, library
    runners = children(srv.proc.pid, "kotae.runners.host")
    assert any(
        library in Path(f"/proc/{pid}/maps").read_text()
        for pid in runners
        for library in ["libllama"]
    )


def test_a_runner_killed_mid_stream_fails_only_its_requests(srv: Server) -> None:
    a, b = client(srv, "victim"), client(srv, "bystander")
    a.responses.create(model="gpt-4o", input="Hi", max_output_tokens=16)  # started and ready
    pid = engines(srv)[DEFAULT_ID]["pid"]
    # Project B streams on another model while A's engine dies.
    other = b.responses.create(model=FAST_MODEL, input="hello", max_output_tokens=400, stream=True)
    other_events = [next(iter(other))]
    stream = a.responses.create(model="gpt-4o", input=LONG, max_output_tokens=400, stream=True)
    events = []
    for event in stream:
        events.append(event)
        if event.type == "response.output_text.delta":
            os.kill(pid, signal.SIGSTOP)  # frozen mid-answer, so the kill lands mid-stream
            os.kill(pid, signal.SIGKILL)
            break
    events += list(stream)
    assert_stream_grammar(events)
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.error is not None
    assert "crashed" in failed.response.error.message
    assert "SIGKILL" in failed.response.error.message
    other_events += list(other)
    assert other_events[-1].type in ("response.completed", "response.incomplete")
    # Restarted: the next request is answered, by a new process.
    again = a.responses.create(model="gpt-4o", input="Hi", max_output_tokens=16)
    assert again.status in ("completed", "incomplete") and again.output_text
    state = engines(srv)[DEFAULT_ID]
    assert state["state"] == "ready" and state["pid"] != pid and state["restarts"] >= 1
    assert not alive(pid)


def test_a_request_still_waiting_when_its_engine_dies_is_retried(srv: Server) -> None:
    """A request the engine had not begun to answer (0 tokens) is sent again to the
    restarted engine and answered, where it used to fail with the one being answered."""
    a = client(srv, "plain")
    a.responses.create(model=FAST_MODEL, input="Hi", max_output_tokens=16)
    pid = engines(srv)[FAST_MODEL]["pid"]
    restarts = engines(srv)[FAST_MODEL]["restarts"]
    os.kill(pid, signal.SIGSTOP)  # the request waits on a frozen engine...
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            outcome["answer"] = a.responses.create(
                model=FAST_MODEL, input="Hi", max_output_tokens=50
            )
        except openai.APIStatusError as exc:
            outcome["error"] = exc

    asking = threading.Thread(target=ask)
    asking.start()
    wait_until(lambda: engines(srv)[FAST_MODEL]["in_flight"] >= 1, 30, "the request is sent")
    os.kill(pid, signal.SIGSEGV)  # ...which then dies as a native fault would kill it
    os.kill(pid, signal.SIGCONT)
    asking.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["answer"].status in ("completed", "incomplete")
    state = engines(srv)[FAST_MODEL]
    assert state["restarts"] == restarts + 1 and state["pid"] != pid


def test_a_crash_in_a_non_streamed_request_is_a_clear_5xx(srv: Server) -> None:
    """One the engine had begun to answer is not run twice: a 503 that says why."""
    a = client(srv, "plain-2")
    a.responses.create(model="gpt-4o", input="Hi", max_output_tokens=16)
    pid = engines(srv)[DEFAULT_ID]["pid"]
    made = engines(srv)[DEFAULT_ID]["generated_tokens"]
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            a.responses.create(model="gpt-4o", input=LONG, max_output_tokens=400)
        except openai.APIStatusError as exc:
            outcome["error"] = exc

    asking = threading.Thread(target=ask)
    asking.start()
    wait_until(
        lambda: engines(srv)[DEFAULT_ID]["generated_tokens"] > made, 60, "the answer to begin"
    )
    os.kill(pid, signal.SIGSTOP)
    os.kill(pid, signal.SIGSEGV)
    os.kill(pid, signal.SIGCONT)
    asking.join(60)
    error = outcome["error"]
    assert error.status_code == 503
    body = error.response.json()["error"]
    assert body["type"] == "server_error" and body["code"] == "engine_crashed"
    assert "SIGSEGV" in body["message"] and "restarting" in body["message"]
    assert a.responses.create(model="gpt-4o", input="Hi", max_output_tokens=16).output_text


def test_a_model_that_cannot_load_leaves_the_api_up(srv: Server) -> None:
    a = client(srv, "broken")
    with pytest.raises(openai.APIStatusError) as info:
        a.responses.create(model="broken", input="Hi")
    assert info.value.status_code == 503
    body = info.value.response.json()["error"]
    assert body["code"] == "engine_unavailable" and "broken" in body["message"]
    state = engines(srv)["broken"]
    assert state["state"] == "unavailable" and state["reason"]
    # The server and its other models are untouched.
    assert a.responses.create(model=FAST_MODEL, input="Hi", max_output_tokens=16).output_text
    assert httpx.get(f"http://127.0.0.1:{srv.port}/health").status_code == 200


def test_runners_die_with_the_server(tmp_path: Path) -> None:
    server = Server(tmp_path / "d")
    a = OpenAI(base_url=server.base_url, api_key=new_key(server.env, "p"), max_retries=0)
    a.responses.create(model=FAST_MODEL, input="Hi", max_output_tokens=16)
    runners = children(server.proc.pid, "kotae.runners.host")
    assert len(runners) == 2  # the default model's (started at start) and the tiny one
    server.proc.kill()
    server.proc.wait()
    server.stop()
    wait_until(lambda: not any(alive(pid) for pid in runners), 10, "the runners exit")
