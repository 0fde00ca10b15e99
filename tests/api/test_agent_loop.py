"""The agent loop through the SDK, on an engine that calls tools natively (a scripted stand-in
speaking OpenAI's chat protocol, the edge of the internet for remote engines): the model calls
tools as often and in whatever order it needs, kotae runs the built-in ones and feeds their
results back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI

from tests.api.test_vector_stores import create_and_poll
from tests.api.test_web_search import NEWS
from tests.helpers import Server, assert_stream_grammar, new_key
from tests.standins import ScriptedChatEngine, SearxngStandIn

MODEL = "scripted"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OpenAI, ScriptedChatEngine, SearxngStandIn, str]]:
    engine = ScriptedChatEngine([])
    web = SearxngStandIn(NEWS)
    models = [{"id": MODEL, "backend": "openai_compat", "base_url": engine.url}]
    srv = Server(
        tmp_path_factory.mktemp("loop"),
        KOTAE_MODELS=json.dumps(models),
        KOTAE_WEB_SEARCH_PROVIDER="searxng",
        KOTAE_SEARXNG_URL=web.url,
        KOTAE_FETCH_ALLOW_HOSTS="127.0.0.1",
        KOTAE_MAX_MODEL_TURNS="4",
    )
    client = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
    alpha = client.files.create(
        file=("alpha.txt", b"Alpha plant: the boiler pressure limit is 12 bar."),
        purpose="assistants",
    )
    beta = client.files.create(
        file=("beta.txt", b"Beta plant: the night shift starts at 22:00."), purpose="assistants"
    )
    store = create_and_poll(client, name="plants", file_ids=[alpha.id, beta.id])
    yield client, engine, web, store.id
    srv.stop()
    engine.close()
    web.close()


@pytest.fixture
def loop(
    setup: tuple[OpenAI, ScriptedChatEngine, SearxngStandIn, str],
) -> tuple[OpenAI, ScriptedChatEngine, SearxngStandIn, str]:
    setup[1].requests.clear()
    return setup


def files(store: str) -> dict[str, Any]:
    return {"type": "file_search", "vector_store_ids": [store]}


def tool_messages(body: dict[str, Any]) -> list[str]:
    return [str(m["content"]) for m in body["messages"] if m["role"] == "tool"]


def test_two_file_searches_in_one_response(loop: Any) -> None:
    client, engine, _, store = loop
    engine.steps = [
        [("file_search", {"query": "boiler pressure"})],
        [("file_search", {"query": "night shift"})],
    ]
    events = assert_stream_grammar(
        client.responses.create(
            model=MODEL,
            input="Boiler limit at Alpha and the night shift at Beta?",
            tools=[files(store)],
            include=["file_search_call.results"],
            stream=True,
        )
    )
    r = events[-1].response
    assert r.status == "completed"
    assert [o.type for o in r.output] == ["file_search_call", "file_search_call", "message"]
    assert r.output[0].queries == ["boiler pressure"] and r.output[1].queries == ["night shift"]
    assert r.output[0].results[0].filename == "alpha.txt"
    assert r.output[1].results[0].filename == "beta.txt"
    # Three model turns; the last one read both searches' excerpts as tool results.
    assert len(engine.requests) == 3
    fed = tool_messages(engine.requests[2])
    assert len(fed) == 2 and "12 bar" in fed[0] and "22:00" in fed[1]
    # The answer cites the files found.
    annotations = r.output[2].content[0].annotations
    assert {a.filename for a in annotations} >= {"beta.txt"}
    # Usage counts every turn (20 input tokens each at the stand-in).
    assert r.usage.input_tokens == 60


def test_web_search_then_a_function_call_then_the_answer(loop: Any) -> None:
    client, engine, _, _ = loop
    engine.steps = [
        [("web_search", {"query": "AI chip sales"})],
        [("get_weather", {"city": "Tokyo"})],
    ]
    r = client.responses.create(
        model=MODEL,
        input="Chip news, and the weather in Tokyo?",
        tools=[{"type": "web_search_preview"}, WEATHER],
    )
    assert [o.type for o in r.output] == ["web_search_call", "function_call"]
    assert r.output[0].action.query == "AI chip sales"
    call = r.output[1]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Tokyo"}
    # The page the search read reached the model before it called the function.
    assert "record quarterly sales" in tool_messages(engine.requests[1])[0]
    # The client runs its function and continues the thread: the model answers.
    engine.steps = ["Sunny.", "Sunny.", "Sunny."]
    done = client.responses.create(
        model=MODEL,
        previous_response_id=r.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[{"type": "web_search_preview"}, WEATHER],
    )
    assert done.output_text.strip() == "Sunny."


def test_parallel_calls_keep_their_order_and_run_in_one_turn(loop: Any) -> None:
    client, engine, _, store = loop
    engine.steps = [
        [("file_search", {"query": "boiler"}), ("web_search", {"query": "chips"})],
    ]
    events = assert_stream_grammar(
        client.responses.create(
            model=MODEL,
            input="Both, please.",
            tools=[files(store), {"type": "web_search_preview"}],
            stream=True,
        )
    )
    r = events[-1].response
    assert [o.type for o in r.output] == ["file_search_call", "web_search_call", "message"]
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["file_search_call", "web_search_call", "message"]
    assert len(engine.requests) == 2 and engine.requests[0]["parallel_tool_calls"] is True
    # With parallel_tool_calls=false the engine is told, and one call a turn is run.
    engine.requests.clear()
    r = client.responses.create(
        model=MODEL,
        input="Both, please.",
        tools=[files(store), {"type": "web_search_preview"}],
        parallel_tool_calls=False,
    )
    assert engine.requests[0]["parallel_tool_calls"] is False
    assert [o.type for o in r.output].count("web_search_call") == 0


def test_max_tool_calls_is_enforced(loop: Any) -> None:
    client, engine, _, store = loop
    engine.steps = [
        [("file_search", {"query": "boiler"})],
        [("file_search", {"query": "night"})],
    ]
    r = client.responses.create(
        model=MODEL, input="Search twice.", tools=[files(store)], max_tool_calls=1
    )
    assert r.max_tool_calls == 1
    assert [o.type for o in r.output] == ["file_search_call", "message"]
    # After the one call, the model is no longer offered the tool.
    assert engine.tools_offered(0) == ["file_search"] and engine.tools_offered(1) == []
    # Two calls in one turn with one left: the second is ignored.
    engine.requests.clear()
    engine.steps = [[("file_search", {"query": "a"}), ("file_search", {"query": "b"})]]
    r = client.responses.create(
        model=MODEL, input="Search twice.", tools=[files(store)], max_tool_calls=1
    )
    assert [o.type for o in r.output] == ["file_search_call", "message"]


def test_tool_choice_applies_to_the_first_turn(loop: Any) -> None:
    client, engine, _, store = loop
    engine.steps = [[("file_search", {"query": "boiler"})]]
    client.responses.create(
        model=MODEL,
        input="Hi",
        tools=[files(store), WEATHER],
        tool_choice={"type": "file_search"},
    )
    first, second = engine.requests[0], engine.requests[1]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "file_search"}}
    assert engine.tools_offered(0) == ["file_search"]
    assert second["tool_choice"] == "auto"
    assert sorted(engine.tools_offered(1)) == ["file_search", "get_weather"]
    engine.requests.clear()
    r = client.responses.create(
        model=MODEL, input="Hi", tools=[files(store), WEATHER], tool_choice="none"
    )
    assert "tools" not in engine.requests[0] and r.output[0].type == "message"
    engine.requests.clear()
    client.responses.create(
        model=MODEL,
        input="Hi",
        tools=[files(store), {"type": "web_search_preview"}, WEATHER],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "web_search_preview"}, {"type": "function", "name": "get_weather"}],
        },
    )
    assert engine.requests[0]["tool_choice"] == "required"
    assert sorted(engine.tools_offered(0)) == ["get_weather", "web_search"]


def test_no_tool_needed_is_one_turn(loop: Any) -> None:
    client, engine, _, store = loop
    engine.steps = ["Hello! How can I help?"]
    r = client.responses.create(
        model=MODEL,
        input="Hello",
        tools=[files(store), {"type": "web_search_preview"}, WEATHER],
    )
    assert r.output_text.strip() == "Hello! How can I help?"
    assert len(engine.requests) == 1
    assert sorted(engine.tools_offered(0)) == ["file_search", "get_weather", "web_search"]


def test_a_failing_built_in_tool_is_reported_to_the_model(loop: Any) -> None:
    client, engine, web, _ = loop
    engine.steps = [[("web_search", {"query": "chips"})]]
    web.down = True
    try:
        r = client.responses.create(
            model=MODEL, input="Chip news?", tools=[{"type": "web_search_preview"}]
        )
    finally:
        web.down = False
    assert r.status == "completed"
    assert [o.type for o in r.output] == ["web_search_call", "message"]
    assert r.output[0].status == "failed"
    fed = tool_messages(engine.requests[1])
    assert "failed" in fed[0] and "SearXNG" in fed[0]
    assert "failed" in r.output_text


def test_the_turn_limit_ends_with_an_answer_without_tools(loop: Any) -> None:
    client, engine, _, store = loop
    engine.steps = [[("file_search", {"query": f"q{i}"})] for i in range(10)]
    r = client.responses.create(model=MODEL, input="Keep searching.", tools=[files(store)])
    # KOTAE_MAX_MODEL_TURNS=4: three searching turns, then one that may not call tools.
    assert len(engine.requests) == 4
    assert [o.type for o in r.output] == ["file_search_call"] * 3 + ["message"]
    assert "tools" not in engine.requests[3] or engine.requests[3]["tool_choice"] == "none"
    assert r.status == "completed" and r.output_text.startswith("Done.")
