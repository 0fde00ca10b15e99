"""How an in-process model's output becomes text or tool calls: the tagged form, the bare and
fenced JSON forms small models write, a call the conversation already answered, and the
tool-result wrapper a model may copy into its answer."""

from __future__ import annotations

import json

import pytest

from kotae.providers.inference.base import (
    ChatMessage,
    ChatRequest,
    FunctionSpec,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from kotae.providers.inference.llama_cpp import OutputRouter, WrapperFilter

WEATHER = FunctionSpec(
    "get_weather",
    "Weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ASKED = [ChatMessage("user", "東京の今日の天気は？")]
ANSWERED = [
    *ASKED,
    ChatMessage("assistant", "", tool_calls=[ToolCall("call_1", "get_weather", '{"city":"東京"}')]),
    ChatMessage("tool", "東京: 晴れ", tool_call_id="call_1"),
]


def route(
    text: str, messages: list[ChatMessage] = ASKED, tools: list[FunctionSpec] | None = None
) -> tuple[str, list[tuple[str, dict[str, object]]], str]:
    """Feeds `text` two characters at a time, as a stream splits it."""
    out: list[object] = []
    request = ChatRequest(messages, 100, 0.0, 1.0, tools=[WEATHER] if tools is None else tools)
    router = OutputRouter(out.append, request)
    for i in range(0, len(text), 2):
        router.feed(text[i : i + 2])
    how = router.finish()
    said = "".join(o.text for o in out if isinstance(o, TextDelta))
    calls = [
        (o.call.name, json.loads(o.call.arguments)) for o in out if isinstance(o, ToolCallDelta)
    ]
    return said, calls, how


@pytest.mark.parametrize(
    "written",
    [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "東京"}}\n</tool_call>',
        '```json\n{\n  "name": "get_weather",\n  "arguments": {"city": "東京"}\n}\n```',
        '{"name": "get_weather", "arguments": {"city": "東京"}}',
        '[{"name": "get_weather", "arguments": {"city": "東京"}}]',
        '{{"name": "get_weather", "arguments": {"city": "東京"}}}',  # Qwen's template's braces
        '{{"name": "get_weather", "arguments": {"city": "東京"}}',  # ... one of them left out
        '<tool_call>{{"name": "get_weather", "arguments": {"city": "東京"}}}</tool_call>',
    ],
)
def test_every_way_a_small_model_writes_a_call(written: str) -> None:
    assert route(written) == ("", [("get_weather", {"city": "東京"})], "calls")


@pytest.mark.parametrize(
    "answer",
    [
        '```json\n{"name": "Tokyo", "population": 14}\n```',  # JSON, but no call
        '{"name": "not_a_tool", "arguments": {}}',  # a tool that was not offered
        "```python\nprint('hi')\n```",
        "東京は晴れです。",
        '{"name": "get_weather", "arguments": {"city": "東京"}, "extra": 1}',
    ],
)
def test_answers_that_only_look_like_calls_stay_text(answer: str) -> None:
    assert route(answer) == (answer, [], "text")


def test_text_streams_as_soon_as_it_cannot_be_a_call() -> None:
    out: list[object] = []
    router = OutputRouter(out.append, ChatRequest(ASKED, 100, 0.0, 1.0, tools=[WEATHER]))
    router.feed("```py")
    assert [o.text for o in out if isinstance(o, TextDelta)] == ["```py"]
    out.clear()
    router = OutputRouter(out.append, ChatRequest(ASKED, 100, 0.0, 1.0, tools=[WEATHER]))
    router.feed('```json\n{"na')
    assert out == []  # may still become a call: held


def test_a_call_already_answered_is_not_made_again() -> None:
    said, calls, how = route(
        '```json\n{"name": "get_weather", "arguments": {"city": "東京"}}\n```', ANSWERED
    )
    assert (said, calls, how) == ("", [], "repeated")
    # Another city is a new call.
    assert route('{"name": "get_weather", "arguments": {"city": "大阪"}}', ANSWERED)[2] == "calls"


def test_the_tool_result_wrapper_never_reaches_the_answer() -> None:
    said, _, _ = route(
        "<tool_response>\nThe weather in Tokyo is 18°C.</tool_response>", ANSWERED, []
    )
    assert said == "The weather in Tokyo is 18°C."
    # Without tool results in the conversation, the same characters are the user's business.
    said, _, _ = route("<tool_response> is a tag.", ASKED, [])
    assert said == "<tool_response> is a tag."


def test_wrapper_filter_holds_only_a_possible_tag() -> None:
    f = WrapperFilter(True)
    assert f.feed("Sunny <tool_") == "Sunny "
    assert f.feed("response>and warm</tool") == "and warm"
    assert f.feed("s are fine") == "</tools are fine"
    assert f.flush() == ""
