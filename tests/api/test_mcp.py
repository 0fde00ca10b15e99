"""The mcp tool through the SDK: real MCP servers (the `mcp` SDK's own, streamable HTTP and
SSE) on loopback, a scripted engine with native tool calls as the model, and the OpenAI Agents
SDK's HostedMCPTool, unchanged."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents import Agent, HostedMCPTool, OpenAIResponsesModel, Runner, set_tracing_disabled
from openai import AsyncOpenAI, OpenAI

from tests.conformance import oracle
from tests.helpers import Server, assert_stream_grammar, free_port, new_key, wait_until
from tests.standins import ScriptedChatEngine

MODEL = "scripted"
TOKEN = "plant-secret"
LIMIT = "The Alpha boiler pressure limit is 12 bar."


def start_mcp(transport: str, *token: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mcp_server", str(port), transport, *token],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    path = "/sse" if transport == "sse" else "/mcp"

    def up() -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    wait_until(up, 30, "the MCP server to start")
    return proc, f"http://127.0.0.1:{port}{path}"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    http, http_url = start_mcp("streamable-http", TOKEN)
    sse, sse_url = start_mcp("sse")
    engine = ScriptedChatEngine([])
    models = [{"id": MODEL, "backend": "openai_compat", "base_url": engine.url}]
    srv = Server(
        tmp_path_factory.mktemp("mcp"),
        KOTAE_MODELS=json.dumps(models),
        KOTAE_FETCH_ALLOW_HOSTS="127.0.0.1",
    )
    # Project A's exchanges are judged by OpenAI's spec at the end.
    recorder = oracle.Recorder()
    http_client = httpx.Client(event_hooks={"response": [recorder.hook]}, timeout=120)
    a = OpenAI(
        base_url=srv.base_url,
        api_key=new_key(srv.env, "a"),
        max_retries=0,
        http_client=http_client,
    )
    b = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "b"), max_retries=0)
    yield {
        "a": a,
        "b": b,
        "engine": engine,
        "http": http_url,
        "sse": sse_url,
        "srv": srv,
        "recorder": recorder,
    }
    srv.stop()
    engine.close()
    for proc in (http, sse):
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def w(world: dict[str, Any]) -> dict[str, Any]:
    world["engine"].requests.clear()
    return world


def plant(w: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "plant",
        "server_url": w["http"],
        "authorization": TOKEN,
        "require_approval": "never",
        **extra,
    }


LIMIT_CALL = [("mcp__plant__pressure_limit", {"plant": "Alpha"})]


def test_the_model_calls_a_server_tool_with_every_event(w: dict[str, Any]) -> None:
    w["engine"].steps = [LIMIT_CALL]
    events = assert_stream_grammar(
        w["a"].responses.create(
            model=MODEL, input="Alpha's boiler limit?", tools=[plant(w)], stream=True
        )
    )
    r = events[-1].response
    assert r.status == "completed"
    assert [o.type for o in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    listed = r.output[0]
    assert listed.server_label == "plant"
    assert {t.name for t in listed.tools} == {"pressure_limit", "add", "explode"}
    call = r.output[1]
    assert call.name == "pressure_limit" and json.loads(call.arguments) == {"plant": "Alpha"}
    assert call.output == LIMIT and call.error is None and call.status == "completed"
    types = [e.type for e in events]
    for kind in (
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
    ):
        assert kind in types, kind
    # The model was offered the server's tools and read the tool's answer.
    offered = w["engine"].tools_offered(0)
    assert "mcp__plant__pressure_limit" in offered and "mcp__plant__add" in offered
    fed = [m for m in w["engine"].requests[1]["messages"] if m["role"] == "tool"]
    assert fed[0]["content"] == LIMIT
    assert LIMIT in r.output_text
    # Stored: retrieve gives the same items.
    again = w["a"].responses.retrieve(r.id)
    assert [o.type for o in again.output] == ["mcp_list_tools", "mcp_call", "message"]


def test_the_tool_list_is_kept_per_thread_and_per_project(w: dict[str, Any]) -> None:
    a, b, engine = w["a"], w["b"], w["engine"]
    engine.steps = ["Hello."]
    first = a.responses.create(model=MODEL, input="Hi", tools=[plant(w)])
    assert first.output[0].type == "mcp_list_tools"
    follow = a.responses.create(
        model=MODEL, input="And again?", tools=[plant(w)], previous_response_id=first.id
    )
    # Listed once in the thread: the follow-up reuses it, and still offers the tools.
    assert [o.type for o in follow.output] == ["message"]
    assert "mcp__plant__add" in engine.tools_offered(1)
    # Another project cannot continue that thread, and lists the server for itself.
    with pytest.raises(openai.BadRequestError):
        b.responses.create(model=MODEL, input="x", tools=[plant(w)], previous_response_id=first.id)
    own = b.responses.create(model=MODEL, input="Hi", tools=[plant(w)])
    assert own.output[0].type == "mcp_list_tools"


def test_allowed_tools_limit_what_is_listed_and_offered(w: dict[str, Any]) -> None:
    w["engine"].steps = ["Fine."]
    r = w["a"].responses.create(model=MODEL, input="Hi", tools=[plant(w, allowed_tools=["add"])])
    assert [t.name for t in r.output[0].tools] == ["add"]
    assert w["engine"].tools_offered(0) == ["mcp__plant__add"]


def test_a_failing_tool_is_a_failed_call_the_model_answers_after(w: dict[str, Any]) -> None:
    w["engine"].steps = [[("mcp__plant__explode", {})]]
    r = w["a"].responses.create(model=MODEL, input="Check the valve.", tools=[plant(w)])
    assert r.status == "completed"
    call = r.output[1]
    assert call.type == "mcp_call" and call.status == "failed" and call.output is None
    assert call.error is not None and call.error.type == "mcp_tool_execution_error"
    fed = [m for m in w["engine"].requests[1]["messages"] if m["role"] == "tool"]
    assert "failed" in fed[0]["content"]
    assert r.output[-1].type == "message"


def test_a_server_that_is_down_or_refuses_is_a_424_before_any_event(w: dict[str, Any]) -> None:
    down = plant(w, server_url=f"http://127.0.0.1:{free_port()}/mcp")
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as err:
            w["a"].responses.create(model=MODEL, input="Hi", tools=[down], stream=stream)
        assert err.value.status_code == 424
        body = err.value.response.json()["error"]
        assert body["code"] == "mcp_list_tools_failed" and body["param"] == "tools[0].server_url"
    # Without its token the server answers 401: also a failed listing.
    with pytest.raises(openai.APIStatusError) as err:
        w["a"].responses.create(model=MODEL, input="Hi", tools=[plant(w, authorization=None)])
    assert err.value.status_code == 424
    assert w["engine"].requests == []  # the model never ran


def test_sse_servers_work_too(w: dict[str, Any]) -> None:
    w["engine"].steps = [[("mcp__plant__add", {"a": 2, "b": 3})]]
    tool = {
        "type": "mcp",
        "server_label": "plant",
        "server_url": w["sse"],
        "require_approval": "never",
    }
    r = w["a"].responses.create(model=MODEL, input="2+3?", tools=[tool])
    assert r.output[1].type == "mcp_call" and r.output[1].output == "5"


def test_an_approval_round_trip(w: dict[str, Any]) -> None:
    a, b, engine = w["a"], w["b"], w["engine"]
    engine.steps = [LIMIT_CALL]
    asked = a.responses.create(
        model=MODEL, input="Alpha's limit?", tools=[plant(w, require_approval="always")]
    )
    assert [o.type for o in asked.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = asked.output[1]
    assert request.id.startswith("mcpr_") and request.name == "pressure_limit"
    assert len(engine.requests) == 1  # the response waits: nothing was called yet
    # Another project cannot answer it.
    with pytest.raises(openai.BadRequestError) as err:
        b.responses.create(
            model=MODEL,
            input=[
                {
                    "type": "mcp_approval_response",
                    "approval_request_id": request.id,
                    "approve": True,
                }
            ],
            tools=[plant(w)],
        )
    assert err.value.response.json()["error"]["code"] == "not_found"
    engine.steps = ["The limit is 12 bar."]
    done = a.responses.create(
        model=MODEL,
        previous_response_id=asked.id,
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
        ],
        tools=[plant(w, require_approval="always")],
    )
    assert [o.type for o in done.output] == ["mcp_call", "message"]
    call = done.output[0]
    assert call.approval_request_id == request.id and call.output == LIMIT
    fed = [m for m in engine.requests[-1]["messages"] if m["role"] == "tool"]
    assert fed[-1]["content"] == LIMIT
    # Declined: no call; the model is told.
    engine.requests.clear()
    engine.steps = [LIMIT_CALL]
    asked = a.responses.create(
        model=MODEL,
        input="Again?",
        tools=[plant(w, require_approval={"always": {"tool_names": ["pressure_limit"]}})],
    )
    engine.steps = ["OK, I will not."]
    declined = a.responses.create(
        model=MODEL,
        previous_response_id=asked.id,
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": asked.output[-1].id,
                "approve": False,
            }
        ],
        tools=[plant(w, require_approval="always")],
    )
    assert [o.type for o in declined.output] == ["message"]
    fed = [m for m in engine.requests[-1]["messages"] if m["role"] == "tool"]
    assert "declined" in fed[-1]["content"]


def test_server_urls_go_through_the_ssrf_guard(client: OpenAI) -> None:
    # The shared test server allows no private hosts: a loopback MCP server is refused.
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model="gpt-4o",
            input="Hi",
            tools=[{"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:9/mcp"}],
        )
    assert "private or reserved" in err.value.message


def test_bad_mcp_tools_are_400s(w: dict[str, Any]) -> None:
    bad = [
        ({"type": "mcp", "server_url": w["http"]}, "tools[0].server_label"),
        ({"type": "mcp", "server_label": "p"}, "tools[0].server_url"),
        (plant(w, require_approval="sometimes"), "tools[0].require_approval"),
        (plant(w, allowed_tools="add"), "tools[0].allowed_tools"),
        (plant(w, colour="red"), "tools[0].colour"),
    ]
    for tool, param in bad:
        with pytest.raises(openai.BadRequestError) as err:
            w["a"].responses.create(model=MODEL, input="Hi", tools=[tool])
        assert err.value.response.json()["error"]["param"] == param
    with pytest.raises(openai.BadRequestError):
        w["a"].responses.create(model=MODEL, input="Hi", tools=[plant(w), plant(w)])


def test_the_agents_sdk_uses_an_mcp_server_through_hosted_mcp_tool(w: dict[str, Any]) -> None:
    set_tracing_disabled(True)
    w["engine"].steps = [LIMIT_CALL]
    srv: Server = w["srv"]
    client = AsyncOpenAI(base_url=srv.base_url, api_key=w["a"].api_key, max_retries=0)
    agent = Agent(
        name="Plant assistant",
        instructions="Answer with the plant tools.",
        model=OpenAIResponsesModel(model=MODEL, openai_client=client),
        tools=[HostedMCPTool(tool_config=plant(w))],  # type: ignore[arg-type]
    )
    result = asyncio.run(Runner.run(agent, "What is Alpha's boiler limit?", max_turns=3))
    assert LIMIT in str(result.final_output)
    kinds = [item.type for item in result.new_items]
    assert "mcp_list_tools_item" in kinds and "tool_call_item" in kinds


@pytest.mark.skipif(not oracle.SPEC_PATH.exists(), reason="no OpenAI spec here")
def test_every_body_and_event_above_matches_openais_spec(w: dict[str, Any]) -> None:
    recorder: oracle.Recorder = w["recorder"]
    assert recorder.events > 20 and recorder.bodies > 20
    assert not recorder.violations, recorder.violations[:5]


SECRET = "x-trace-7f3e9c1d5b"  # a header value no answer, row, blob or log line may hold


def secret_plant(w: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return plant(w, headers={"X-Trace": SECRET}, **extra)


def held_anywhere(data_dir: Path, *secrets: str) -> list[str]:
    """Files under the data dir (database, its WAL, blobs, the server's log) holding one."""
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {s}" for s in secrets if s.encode() in data]
    return found


def test_credentials_are_used_never_echoed_stored_or_logged(w: dict[str, Any]) -> None:
    """MCP headers and authorization reach the server (the tool works: it needs the token)
    and nothing else: not the answer, a retrieve, the list, a streamed snapshot, a replay or
    a background response; nor the database, its WAL, the blobs or the log."""
    a, engine = w["a"], w["engine"]
    made: list[str] = []
    engine.steps = [LIMIT_CALL]
    plain = a.responses.create(model=MODEL, input="Limit?", tools=[secret_plant(w)])
    assert plain.output[1].output == LIMIT  # the token reached the MCP server
    made.append(plain.id)
    engine.requests.clear()
    engine.steps = [LIMIT_CALL]
    events = list(
        a.responses.create(model=MODEL, input="Limit?", tools=[secret_plant(w)], stream=True)
    )
    made.append(events[-1].response.id)
    texts = [e.model_dump_json() for e in events]
    engine.requests.clear()
    engine.steps = [LIMIT_CALL]
    background = a.responses.create(
        model=MODEL, input="Limit?", tools=[secret_plant(w)], background=True, stream=True
    )
    texts += [e.model_dump_json() for e in background]
    made.append(json.loads(texts[-1])["response"]["id"])
    engine.requests.clear()
    engine.steps = [LIMIT_CALL]
    asked = a.responses.create(
        model=MODEL, input="Limit?", tools=[secret_plant(w, require_approval="always")]
    )
    engine.steps = ["The limit is 12 bar."]
    approved = a.responses.create(
        model=MODEL,
        previous_response_id=asked.id,
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": asked.output[-1].id,
                "approve": True,
            }
        ],
        tools=[secret_plant(w, require_approval="always")],
    )
    assert approved.output[0].output == LIMIT  # the next request's credentials were used
    made += [asked.id, approved.id]
    texts += [plain.model_dump_json(), asked.model_dump_json(), approved.model_dump_json()]
    for response_id in made:
        texts.append(a.responses.retrieve(response_id).model_dump_json())
        texts += [e.model_dump_json() for e in a.responses.retrieve(response_id, stream=True)]
    texts.append(
        httpx.get(
            f"{w['srv'].base_url}/responses", headers={"Authorization": f"Bearer {a.api_key}"}
        ).text
    )
    for text in texts:
        assert SECRET not in text and TOKEN not in text
    echoed = a.responses.retrieve(plain.id).tools[0]
    assert echoed.type == "mcp" and echoed.server_label == "plant"
    assert not getattr(echoed, "headers", None) and not getattr(echoed, "authorization", None)
    assert held_anywhere(w["srv"].data_dir, SECRET, TOKEN) == []


def test_a_background_response_with_credentials_is_never_queued_for_a_worker(
    w: dict[str, Any], tmp_path: Path
) -> None:
    """On an API replica without a worker, a background response is queued with its request
    for a worker: one whose tools carry credentials runs on the replica instead, holding them
    in memory only."""
    models = [{"id": MODEL, "backend": "openai_compat", "base_url": w["engine"].url}]
    srv = Server(
        tmp_path / "replica",
        args=["--no-worker"],
        worker=False,
        KOTAE_MODELS=json.dumps(models),
        KOTAE_FETCH_ALLOW_HOSTS="127.0.0.1",
    )
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "r"), max_retries=0)
        w["engine"].steps = [LIMIT_CALL]
        r = c.responses.create(
            model=MODEL, input="Limit?", tools=[secret_plant(w)], background=True
        )
        wait_until(
            lambda: c.responses.retrieve(r.id).status not in ("queued", "in_progress"),
            60,
            "the background response to finish without a worker",
        )
        done = c.responses.retrieve(r.id)
        assert done.status == "completed" and done.output[1].output == LIMIT
        assert held_anywhere(srv.data_dir, SECRET, TOKEN) == []
    finally:
        srv.stop()
