"""Responses over WebSocket, through the clients that speak it: the openai SDK's
`client.responses.connect()` and the Agents SDK's websocket session."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest
import websockets.sync.client
from agents import Agent, ModelSettings, function_tool, set_tracing_disabled
from agents.responses_websocket_session import responses_websocket_session
from openai import OpenAI

from tests.conftest import FAST_MODEL, REAL_MODEL
from tests.helpers import Server, assert_stream_grammar, new_key

TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def until_done(conn: Any, count: int = 1) -> list[Any]:
    """Events until `count` responses (or errors) have ended."""
    events = []
    for event in conn:
        events.append(event)
        if event.type in TERMINAL or event.type == "error":
            count -= 1
            if count == 0:
                return events
    raise AssertionError("the socket closed")


def test_a_streamed_turn_then_a_tool_round_trip(client: OpenAI, client_b: OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model=REAL_MODEL, input="Say hello.", max_output_tokens=24)
        events = until_done(conn)
        assert_stream_grammar(events)
        first = events[-1].response
        assert first.id.startswith("resp_") and first.output_text
        assert not any(hasattr(e, "stream_id") and e.stream_id for e in events)

        conn.response.create(
            model=REAL_MODEL,
            input="What's the weather in Tokyo?",
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice="required",
            previous_response_id=first.id,
        )
        called = until_done(conn)[-1].response
        call = next(o for o in called.output if o.type == "function_call")
        assert json.loads(call.arguments)["city"]
        conn.response.create(
            model=REAL_MODEL,
            previous_response_id=called.id,
            input=[
                {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21C"}
            ],
            tools=[WEATHER],  # type: ignore[list-item]
            max_output_tokens=40,
        )
        answer = until_done(conn)[-1].response
        assert answer.status in ("completed", "incomplete") and answer.output_text
    # Stored as over HTTP, and the project's own.
    assert client.responses.retrieve(answer.id).previous_response_id == called.id
    with pytest.raises(openai.NotFoundError):
        client_b.responses.retrieve(answer.id)


def test_lanes_are_fifo_each_and_run_side_by_side(client: OpenAI) -> None:
    with client.responses.connect() as conn:
        for lane, n in (("a", 1), ("a", 2), ("b", 1)):
            conn.response.create(
                model=FAST_MODEL,
                input=f"{lane}{n}",
                max_output_tokens=16,
                stream_id=lane,
                metadata={"n": f"{lane}{n}"},
            )
        events = until_done(conn, 3)
        by_lane: dict[str, list[Any]] = {"a": [], "b": []}
        for e in events:
            by_lane[e.stream_id].append(e)  # every event echoes its lane
        a = [e.response.metadata["n"] for e in by_lane["a"] if e.type in TERMINAL]
        assert a == ["a1", "a2"]  # FIFO within the lane
        created = [e.response.metadata["n"] for e in by_lane["a"] if e.type == "response.created"]
        assert created == ["a1", "a2"]
        # a2 starts only after a1 ended.
        a_types = [e.type for e in by_lane["a"]]
        assert a_types.index("response.created", 1) > a_types.index(
            next(t for t in a_types if t in TERMINAL)
        )
        first_a = next(e.response.id for e in by_lane["a"] if e.type in TERMINAL)
        # A new lane forks from a response made on another.
        conn.response.create(
            model=FAST_MODEL,
            input="fork",
            max_output_tokens=16,
            stream_id="c",
            previous_response_id=first_a,
        )
        forked = until_done(conn)
        assert {e.stream_id for e in forked} == {"c"}
        assert forked[-1].response.previous_response_id == first_a


def raw_socket(server: Server, key: str) -> Any:
    url = server.base_url.replace("http://", "ws://") + "/responses"
    return websockets.sync.client.connect(
        url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=10
    )


def test_errors_are_events_with_status_and_lane(server: Server, key_a: str) -> None:
    with raw_socket(server, key_a) as ws:

        def ask(event: Any) -> dict[str, Any]:
            ws.send(event if isinstance(event, str) else json.dumps(event))
            got: dict[str, Any] = json.loads(ws.recv(timeout=60))
            return got

        err = ask(
            {
                "type": "response.create",
                "stream_id": "x",
                "model": FAST_MODEL,
                "input": "hi",
                "background": True,
            }
        )
        assert err["type"] == "error" and err["status"] == 400 and err["stream_id"] == "x"
        assert err["error"]["param"] == "background"
        err = ask("{not json")
        assert err["status"] == 400 and "could not parse" in err["error"]["message"]
        err = ask({"type": "session.update"})
        assert err["error"]["param"] == "type"
        err = ask({"type": "response.create", "stream_id": "bad lane!", "model": FAST_MODEL})
        assert err["error"]["param"] == "stream_id"
        err = ask({"type": "response.create", "model": FAST_MODEL, "input": "x", "bogus": 1})
        assert err["status"] == 400 and err["error"]["code"] == "unknown_parameter"
        err = ask({"type": "response.create", "model": "no-such-model", "input": "x"})
        assert err["status"] == 404 and err["error"]["code"] == "model_not_found"
        err = ask(
            {
                "type": "response.create",
                "model": FAST_MODEL,
                "input": "x",
                "metadata": {"\ud800": "v"},
            }
        )
        assert err["status"] == 400 and err["error"]["code"] == "invalid_unicode"
        # The lane limit: 16 lanes at once, the 17th refused.
        for i in range(16):
            ws.send(
                json.dumps(
                    {
                        "type": "response.create",
                        "stream_id": f"l{i}",
                        "model": FAST_MODEL,
                        "input": "x",
                        "max_output_tokens": 16,
                    }
                )
            )
        ws.send(
            json.dumps(
                {"type": "response.create", "stream_id": "l16", "model": FAST_MODEL, "input": "x"}
            )
        )
        seen: list[dict[str, Any]] = []
        while not any(e.get("stream_id") == "l16" for e in seen):
            seen.append(json.loads(ws.recv(timeout=120)))
        refused = next(e for e in seen if e.get("stream_id") == "l16")
        assert refused["error"]["code"] == "websocket_stream_limit_reached"


def test_a_bad_key_gets_openais_error_not_an_empty_403(server: Server) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        raw_socket(server, "sk-wrong")
    answer = refused.value.response
    assert answer.status_code == 401
    assert json.loads(answer.body)["error"]["code"] == "invalid_api_key"
    assert answer.headers["x-request-id"].startswith("req_")


def test_steering_continues_the_running_response(server: Server, key_a: str) -> None:
    with raw_socket(server, key_a) as ws:
        ws.send(
            json.dumps(
                {"type": "response.steer", "previous_response_id": "resp_nope", "input": "x"}
            )
        )
        failed = json.loads(ws.recv(timeout=30))
        assert failed["type"] == "response.steer.failed"
        assert failed["error"]["code"] == "response_not_found" and "id" not in failed["steer"]

        ws.send(
            json.dumps(
                {
                    "type": "response.create",
                    "stream_id": "s",
                    "model": FAST_MODEL,
                    "input": "Count.",
                    "max_output_tokens": 400,
                }
            )
        )
        created = json.loads(ws.recv(timeout=60))
        assert created["type"] == "response.created"
        target = created["response"]["id"]
        ws.send(
            json.dumps(
                {
                    "type": "response.steer",
                    "previous_response_id": target,
                    "input": "Now stop and say done.",
                }
            )
        )
        events = []
        successor = None
        while successor is None or events[-1]["type"] not in TERMINAL:
            events.append(json.loads(ws.recv(timeout=120)))
            e = events[-1]
            if e["type"] == "response.created" and e["response"]["id"] != target:
                successor = e["response"]
        accepted = next(e for e in events if e["type"] == "response.steer.accepted")
        assert accepted["steer"]["previous_response_id"] == target
        assert accepted["stream_id"] == "s"
        assert successor["previous_response_id"] == target
        assert all(e["stream_id"] == "s" for e in events)
        ws.send(
            json.dumps({"type": "response.steer", "previous_response_id": target, "input": "late"})
        )
        late = json.loads(ws.recv(timeout=30))
        assert late["error"]["code"] == "response_already_completed"


def test_agents_sdk_websocket_session_streams_a_tool_round_trip(server: Server, key_a: str) -> None:
    set_tracing_disabled(True)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        calls.append(city)
        return f"The weather in {city} is sunny, 21C."

    agent = Agent(
        name="Assistant",
        instructions="You are a helpful assistant.",
        model="gpt-4o",
        tools=[get_weather],
        model_settings=ModelSettings(tool_choice="required", max_tokens=200),
    )

    async def run() -> tuple[Any, list[str]]:
        async with responses_websocket_session(api_key=key_a, base_url=server.base_url) as session:
            streamed = session.run_streamed(agent, "What's the weather in Tokyo?", max_turns=5)
            kinds = [e.type async for e in streamed.stream_events()]
            return streamed, kinds

    result, kinds = asyncio.run(run())
    assert calls and isinstance(result.final_output, str) and result.final_output
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds  # streamed


def test_an_idle_socket_is_closed_but_never_a_running_one(tmp_path: Path) -> None:
    srv = Server(tmp_path / "d", KOTAE_WEBSOCKET_IDLE_SECONDS="1")
    try:
        with raw_socket(srv, new_key(srv.env, "idle")) as ws:
            # Runs longer than the idle limit (1 s): the socket stays open until it ends.
            ws.send(
                json.dumps(
                    {
                        "type": "response.create",
                        "model": REAL_MODEL,
                        "input": "Tell me a long story about a robot.",
                        "max_output_tokens": 150,
                    }
                )
            )
            started = time.monotonic()
            while json.loads(ws.recv(timeout=120))["type"] not in TERMINAL:
                pass
            assert time.monotonic() - started > 1
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                ws.recv(timeout=10)  # then, idle for 1 s: closed
    finally:
        srv.stop()
