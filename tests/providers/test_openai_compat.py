"""Remote engines: a real llama.cpp server (llama-cpp-python[server]) behind kotae."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from kotae.config import Settings
from kotae.services.models import ModelRegistry
from tests.helpers import OPS, Server, assert_stream_grammar, free_port, new_key


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    entry = ModelRegistry(Settings(data_dir=tmp_path_factory.mktemp("d"))).resolve("gpt-4o")
    port = free_port()
    log = open(tmp_path_factory.mktemp("engine") / "engine.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(entry.path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--interrupt_requests",
            "False",
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("llama.cpp server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


DEAD = f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture(scope="module")
def remote(engine_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAI]:
    models = [
        {
            "id": "remote-smollm2",
            "backend": "openai_compat",
            "base_url": engine_url,
            "remote_model": "smollm2",
            "context_window": 2048,
        },
        {
            "id": "remote-constrained",
            "backend": "openai_compat",
            "base_url": engine_url,
            "remote_model": "smollm2",
            "context_window": 2048,
            "tool_calling": "constrained",
        },
        {
            "id": "remote-down",
            "backend": "openai_compat",
            "base_url": f"http://127.0.0.1:{free_port()}/v1",
        },
        {  # a pool: one server that is down, and the engine under two names
            "id": "remote-pool",
            "backend": "openai_compat",
            "base_url": DEAD,
            "base_urls": [engine_url, engine_url.replace("127.0.0.1", "localhost")],
            "remote_model": "smollm2",
            "context_window": 2048,
        },
        {
            "id": "remote-pool-down",
            "backend": "openai_compat",
            "base_urls": [DEAD, f"http://127.0.0.1:{free_port()}/v1"],
        },
    ]
    srv = Server(tmp_path_factory.mktemp("kotae"), KOTAE_MODELS=json.dumps(models))
    yield OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0, timeout=120)
    srv.stop()


def test_response_through_remote_engine(remote: OpenAI) -> None:
    r = remote.responses.create(
        model="remote-smollm2", input="What color is the sky?", max_output_tokens=40, temperature=0
    )
    assert r.model == "remote-smollm2"
    assert r.output_text
    assert r.usage is not None and r.usage.output_tokens > 0 and r.usage.input_tokens > 0


def test_stream_and_thread_through_remote_engine(remote: OpenAI) -> None:
    events = assert_stream_grammar(
        remote.responses.create(
            model="remote-smollm2", input="Say hello", stream=True, max_output_tokens=30
        )
    )
    first = events[-1].response
    r2 = remote.responses.create(
        model="remote-smollm2",
        input="And again",
        previous_response_id=first.id,
        max_output_tokens=20,
    )
    assert r2.output_text
    assert r2.usage is not None and first.usage is not None
    assert r2.usage.input_tokens > first.usage.input_tokens


def test_max_output_tokens_is_honoured_remotely(remote: OpenAI) -> None:
    r = remote.responses.create(
        model="remote-smollm2", input="Write a long story.", max_output_tokens=16
    )
    assert r.status == "incomplete"
    assert r.usage is not None and r.usage.output_tokens <= 16


def test_json_schema_through_remote_engine(remote: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"color": {"type": "string"}},
        "required": ["color"],
        "additionalProperties": False,
    }
    r = remote.responses.create(
        model="remote-smollm2",
        input="Name a color as JSON",
        max_output_tokens=60,
        text={"format": {"type": "json_schema", "name": "c", "schema": schema, "strict": True}},
    )
    assert list(json.loads(r.output_text)) == ["color"]


def test_chat_completions_through_remote_engine(remote: OpenAI) -> None:
    c = remote.chat.completions.create(
        model="remote-smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=10
    )
    assert c.choices[0].message.content


def test_engine_down_is_a_clear_error_and_a_failed_stream_is_kept(remote: OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        remote.responses.create(model="remote-down", input="x", max_output_tokens=16)
    assert err.value.status_code == 502
    assert "remote-down" in err.value.body["message"]  # type: ignore[index]
    stream = remote.responses.create(
        model="remote-down", input="x", stream=True, max_output_tokens=16
    )
    events = list(stream)
    assert events[-1].type == "response.failed"
    kept = remote.responses.retrieve(events[-1].response.id)
    assert kept.status == "failed" and kept.error is not None


def test_constrained_tool_calls_on_an_engine_without_tool_calling(remote: OpenAI) -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    r = remote.responses.create(
        model="remote-constrained",
        input="Weather in Tokyo?",
        tools=[tool],
        tool_choice="required",
        temperature=0,
        max_output_tokens=200,
    )
    call = next(o for o in r.output if o.type == "function_call")
    assert call.name == "get_weather" and set(json.loads(call.arguments)) == {"city"}
    r2 = remote.responses.create(
        model="remote-constrained",
        previous_response_id=r.id,
        tools=[tool],
        tool_choice="none",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        max_output_tokens=20,
    )
    assert r2.output_text


def test_a_pool_of_servers_fails_over_and_spreads_requests(remote: OpenAI) -> None:
    origin = str(remote.base_url).rstrip("/").removesuffix("/v1")
    for i in range(4):
        r = remote.responses.create(
            model="remote-pool", input=f"Count to {i}", max_output_tokens=16
        )
        assert r.status in ("completed", "incomplete") and r.output_text
    stream = assert_stream_grammar(
        remote.responses.create(model="remote-pool", input="Hi", stream=True, max_output_tokens=16)
    )
    assert stream[-1].type == "response.completed" or stream[-1].type == "response.incomplete"
    engines = httpx.get(f"{origin}/ready", headers=OPS).json()["engines"]
    servers = {s["base_url"]: s for s in engines["remote-pool"]["upstreams"]}
    assert engines["remote-pool"]["state"] == "ready"
    dead = servers.pop(DEAD)
    # The dead server was tried once, then skipped while down; no request failed for it.
    assert dead["state"] == "down" and dead["failures"] == 1 and dead["served"] == 0
    assert "ClientConnectorError" in dead["reason"]
    served = [s["served"] for s in servers.values()]
    assert sum(served) == 5 and min(served) >= 2  # taken in turn when equally idle
    # Every server down: a clear error, and the model's engine is unavailable.
    with pytest.raises(openai.APIStatusError) as err:
        remote.responses.create(model="remote-pool-down", input="x", max_output_tokens=16)
    assert err.value.status_code in (502, 503)
    engines = httpx.get(f"{origin}/ready", headers=OPS).json()["engines"]
    assert engines["remote-pool-down"]["state"] == "unavailable"
    assert all(s["state"] == "down" for s in engines["remote-pool-down"]["upstreams"])


def test_legacy_completions_go_to_the_engines_own_completions(remote: OpenAI) -> None:
    done = remote.completions.create(
        model="remote-smollm2", prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert done.choices[0].text.strip() and done.usage is not None
    assert done.usage.prompt_tokens >= 5  # the engine's own count of the raw prompt
    streamed = list(
        remote.completions.create(
            model="remote-smollm2",
            prompt="The capital of France is",
            max_tokens=8,
            temperature=0,
            stream=True,
        )
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == done.choices[0].text
