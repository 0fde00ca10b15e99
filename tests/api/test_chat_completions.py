from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL, REAL_MODEL


def test_non_stream(client: OpenAI) -> None:
    c = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hi"},
        ],
        max_tokens=30,
    )
    assert c.object == "chat.completion"
    assert c.choices[0].message.role == "assistant"
    assert c.choices[0].message.content
    assert c.choices[0].finish_reason in ("stop", "length")
    assert c.usage is not None and c.usage.completion_tokens > 0


def test_stream_with_usage(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=FAST_MODEL,
            messages=[{"role": "user", "content": "x"}],
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10


def test_json_schema(client: OpenAI) -> None:
    c = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[{"role": "user", "content": "Give a color as JSON"}],
        max_tokens=60,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "c",
                "schema": {
                    "type": "object",
                    "properties": {"color": {"type": "string"}},
                    "required": ["color"],
                    "additionalProperties": False,
                },
            },
        },
    )
    assert list(json.loads(c.choices[0].message.content or "")) == ["color"]


def test_stop_sequence(client: OpenAI) -> None:
    c = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[{"role": "user", "content": "Count: 1, 2, 3, 4, 5, 6"}],
        max_tokens=60,
        stop=["4"],
        temperature=0,
    )
    assert "4" not in (c.choices[0].message.content or "")


def test_errors(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=FAST_MODEL, messages=[])
    assert err.value.body["param"] == "messages"  # type: ignore[index]
