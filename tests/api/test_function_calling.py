"""Function tools through the SDK on the real default model."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL, REAL_MODEL
from tests.helpers import assert_stream_grammar

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
}
TIME = {
    "type": "function",
    "name": "get_time",
    "description": "Get the local time in a time zone",
    "parameters": {
        "type": "object",
        "properties": {"zone": {"type": "string"}},
        "required": ["zone"],
    },
}


def valid_weather_args(arguments: str) -> bool:
    args: Any = json.loads(arguments)
    return (
        isinstance(args, dict)
        and set(args) == {"city", "unit"}
        and isinstance(args["city"], str)
        and args["unit"] in ("c", "f")
    )


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_required_call_is_valid_for_its_schema(client: OpenAI, temperature: float) -> None:
    # Every call that ends is valid (the grammar); a sampled string can, rarely, run to the
    # token limit before it ends (bench/tool_calls.py: 49-50 of 50).
    unfinished = 0
    for _ in range(3):
        r = client.responses.create(
            model=REAL_MODEL,
            input="What's the weather in Tokyo?",
            tools=[WEATHER],
            tool_choice="required",
            temperature=temperature,
        )
        if r.status == "incomplete":
            unfinished += 1
            continue
        calls = [o for o in r.output if o.type == "function_call"]
        assert len(calls) == 1
        assert calls[0].name == "get_weather"
        assert calls[0].call_id and calls[0].id and calls[0].id.startswith("fc_")
        assert valid_weather_args(calls[0].arguments)
    assert unfinished <= 1


def test_the_random_model_still_calls_validly(client: OpenAI) -> None:
    # Weights that know nothing: only the grammar makes this a valid call.
    r = client.responses.create(
        model=FAST_MODEL, input="x", tools=[WEATHER], tool_choice="required", max_output_tokens=300
    )
    calls = [o for o in r.output if o.type == "function_call"]
    if r.status == "completed":
        assert calls and valid_weather_args(calls[0].arguments)


def test_forced_function_is_the_one_called(client: OpenAI) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input="What's the weather in Tokyo?",
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "name": "get_time"},
        temperature=0,
    )
    calls = [o for o in r.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_time"]
    assert set(json.loads(calls[0].arguments)) == {"zone"}
    assert r.tool_choice.type == "function"  # type: ignore[union-attr]


def test_allowed_tools_limit_the_choice(client: OpenAI) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input="Weather and time in Tokyo?",
        tools=[WEATHER, TIME],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "get_weather"}],
        },
        temperature=0,
    )
    assert {o.name for o in r.output if o.type == "function_call"} == {"get_weather"}


def test_none_never_calls(client: OpenAI) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input="What's the weather in Tokyo?",
        tools=[WEATHER],
        tool_choice="none",
        max_output_tokens=40,
    )
    assert all(o.type == "message" for o in r.output)
    assert r.tools[0].name == "get_weather"  # type: ignore[union-attr]


def test_auto_answers_with_a_message_or_a_valid_call(client: OpenAI) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input="What's the weather in Tokyo?",
        tools=[WEATHER],
        max_output_tokens=80,
    )
    for item in r.output:
        if item.type == "function_call":
            json.loads(item.arguments)
        else:
            assert item.type == "message"


def test_round_trip_with_previous_response_id(client: OpenAI) -> None:
    r1 = client.responses.create(
        model=REAL_MODEL,
        input="What's the weather in Tokyo?",
        tools=[WEATHER],
        tool_choice="required",
        temperature=0,
    )
    call = next(o for o in r1.output if o.type == "function_call")
    r2 = client.responses.create(
        model=REAL_MODEL,
        previous_response_id=r1.id,
        input=[
            {
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": json.dumps({"temperature": 21, "sky": "sunny"}),
            }
        ],
        tools=[WEATHER],
        tool_choice="none",
        max_output_tokens=60,
    )
    assert r2.output_text
    items = client.responses.input_items.list(r2.id).data
    assert items[0].type == "function_call_output"
    assert items[0].call_id == call.call_id  # type: ignore[union-attr]


def test_round_trip_with_items_in_input(client: OpenAI) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input=[
            {"role": "user", "content": "What's the weather in Tokyo?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Tokyo", "unit": "c"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "21C, sunny"},
        ],
        tools=[WEATHER],
        tool_choice="none",
        max_output_tokens=60,
    )
    assert r.status in ("completed", "incomplete") and r.output_text
    kinds = [i.type for i in client.responses.input_items.list(r.id, order="asc").data]
    assert kinds == ["message", "function_call", "function_call_output"]


def test_streamed_call_follows_the_grammar(client: OpenAI) -> None:
    events = assert_stream_grammar(
        client.responses.create(
            model=REAL_MODEL,
            input="Weather in Paris?",
            tools=[WEATHER],
            tool_choice="required",
            temperature=0,
            stream=True,
        )
    )
    types = [e.type for e in events]
    assert types[2:6] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    final = events[-1].response
    assert valid_weather_args(final.output[0].arguments)
    stored = client.responses.retrieve(final.id)
    assert stored.output[0].call_id == final.output[0].call_id  # type: ignore[union-attr]
    replayed = assert_stream_grammar(client.responses.retrieve(final.id, stream=True))
    assert [e.type for e in replayed] == types


def test_chat_completions_tool_calls(client: OpenAI) -> None:
    tool = {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}
    c = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[{"role": "user", "content": "Weather in Tokyo?"}],
        tools=[tool],
        tool_choice="required",  # type: ignore[list-item]
        temperature=0,
    )
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert valid_weather_args(call.function.arguments)  # type: ignore[union-attr]
    follow = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[
            {"role": "user", "content": "Weather in Tokyo?"},
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "21C"},
        ],
        max_tokens=30,
    )
    assert follow.choices[0].message.content


def test_tool_errors(client: OpenAI) -> None:
    cases: list[dict[str, Any]] = [
        {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}},
        {"tool_choice": "required"},
        {"tools": [WEATHER, WEATHER]},
        {"tools": [{"type": "function", "name": "bad name!"}]},
        {"tools": [{"type": "mcp", "server_label": "x"}]},
    ]
    for extra in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.responses.create(model=FAST_MODEL, input="x", **extra)
        assert err.value.body["param"].startswith(("tools", "tool_choice"))  # type: ignore[index]


def test_custom_tool_call_and_its_output(client: OpenAI) -> None:
    tool = {
        "type": "custom",
        "name": "run_sql",
        "description": "Run a SQL query and return the rows.",
    }
    r = client.responses.create(
        model=REAL_MODEL,
        input="How many users signed up today?",
        tools=[tool],
        tool_choice={"type": "custom", "name": "run_sql"},
        temperature=0,  # sampled freeform input can run to the token limit (bench/tool_calls)
    )
    call = next(o for o in r.output if o.type == "custom_tool_call")
    assert call.name == "run_sql" and isinstance(call.input, str)
    assert call.id and call.id.startswith("ctc_")
    r2 = client.responses.create(
        model=REAL_MODEL,
        previous_response_id=r.id,
        tools=[tool],
        tool_choice="none",
        input=[{"type": "custom_tool_call_output", "call_id": call.call_id, "output": "42"}],
        max_output_tokens=30,
    )
    assert r2.output_text
    events = assert_stream_grammar(
        client.responses.create(
            model=REAL_MODEL,
            input="Count the users.",
            tools=[tool],
            tool_choice="required",
            stream=True,
            temperature=0,
        )
    )
    types = [e.type for e in events]
    assert "response.custom_tool_call_input.delta" in types
    assert "response.custom_tool_call_input.done" in types


def test_namespace_tools_call_with_their_namespace(client: OpenAI) -> None:
    tools = [
        {
            "type": "namespace",
            "name": "weather",
            "description": "Weather tools",
            "tools": [{k: v for k, v in WEATHER.items()}],
        }
    ]
    r = client.responses.create(
        model=REAL_MODEL,
        input="Weather in Osaka?",
        tools=tools,
        tool_choice="required",
        temperature=0,
    )
    call = next(o for o in r.output if o.type == "function_call")
    assert call.name == "get_weather" and call.namespace == "weather"
    assert valid_weather_args(call.arguments)
    r2 = client.responses.create(
        model=REAL_MODEL,
        previous_response_id=r.id,
        tools=tools,
        tool_choice="none",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        max_output_tokens=20,
    )
    assert r2.status in ("completed", "incomplete")


@pytest.mark.parametrize(
    ("tool", "item_type"),
    [
        ("shell", "shell_call"),
        ("local_shell", "local_shell_call"),
        ("apply_patch", "apply_patch_call"),
    ],
)
def test_coding_agent_tools(client: OpenAI, tool: str, item_type: str) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input="List the files in the current directory.",
        tools=[{"type": tool}],
        tool_choice="required",
        temperature=0,
    )
    item = next(o for o in r.output if o.type == item_type)
    assert item.call_id and item.status == "completed"
    if item_type == "shell_call":
        assert item.action.commands and all(isinstance(c, str) for c in item.action.commands)
        output = {
            "type": "shell_call_output",
            "call_id": item.call_id,
            "output": [
                {"stdout": "README.md\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}
            ],
        }
    elif item_type == "local_shell_call":
        assert item.action.command
        output = {"type": "local_shell_call_output", "id": item.call_id, "output": "README.md\n"}
    else:
        assert item.operation.type in ("create_file", "update_file", "delete_file")
        output = {
            "type": "apply_patch_call_output",
            "call_id": item.call_id,
            "status": "completed",
            "output": "done",
        }
    r2 = client.responses.create(
        model=REAL_MODEL,
        previous_response_id=r.id,
        tools=[{"type": tool}],
        tool_choice="none",
        input=[output],
        max_output_tokens=20,
    )
    assert r2.status in ("completed", "incomplete")
    replay = assert_stream_grammar(client.responses.retrieve(r.id, stream=True))
    assert replay[-1].response.output[0].type == item_type
