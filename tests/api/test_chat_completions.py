from __future__ import annotations

import json
from typing import Any

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


def test_n_choices_streamed_and_not(client: OpenAI) -> None:
    ask: Any = {
        "model": FAST_MODEL,
        "messages": [{"role": "user", "content": "Say something."}],
        "max_tokens": 12,
        "temperature": 1.0,
        "seed": 7,
    }
    one = client.chat.completions.create(**ask)
    two = client.chat.completions.create(**ask, n=2)
    assert [c.index for c in two.choices] == [0, 1]
    assert all(c.finish_reason in ("stop", "length") for c in two.choices)
    # The prompt is counted once; each choice is its own sample (seed + index).
    assert two.usage is not None and one.usage is not None
    assert two.usage.prompt_tokens == one.usage.prompt_tokens
    # Choice 0 is `one` again (same seed), so choice 1's tokens come on top of its count.
    assert two.usage.completion_tokens > one.usage.completion_tokens
    assert two.choices[0].message.content == one.choices[0].message.content
    assert two.choices[0].message.content != two.choices[1].message.content
    chunks = list(
        client.chat.completions.create(
            **ask, n=3, stream=True, stream_options={"include_usage": True}
        )
    )
    texts: dict[int, str] = {}
    finished: set[int] = set()
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1, 2} and set(texts) == {0, 1, 2}
    assert texts[0] == one.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 3
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**ask, n=129)
    assert err.value.body["param"] == "n"  # type: ignore[index]


def test_stored_completions_list_read_update_delete(client: OpenAI, client_b: OpenAI) -> None:
    tag = {"run": "stored-test"}
    kept = client.chat.completions.create(
        model=FAST_MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi there"}]},
        ],
        max_tokens=16,
        store=True,
        metadata=tag,
    )
    streamed = list(
        client.chat.completions.create(
            model=FAST_MODEL,
            messages=[{"role": "user", "content": "Stream it"}],
            max_tokens=16,
            n=2,
            stream=True,
            store=True,
            metadata=tag,
        )
    )
    client.chat.completions.create(  # not stored
        model=FAST_MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=16, metadata=tag
    )
    listed = client.chat.completions.list(metadata=tag, limit=10)
    assert [c.id for c in listed.data] == [kept.id, streamed[0].id]  # oldest first
    newest = client.chat.completions.list(metadata=tag, order="desc", limit=1)
    assert [c.id for c in newest.data] == [streamed[0].id] and newest.has_more
    assert client.chat.completions.list(metadata={"run": "other"}).data == []
    assert client.chat.completions.list(model="no-such", metadata=tag).data == []

    got = client.chat.completions.retrieve(kept.id)
    assert got.choices[0].message.content == kept.choices[0].message.content
    assert got.metadata == tag  # type: ignore[attr-defined]
    again = client.chat.completions.retrieve(streamed[0].id)
    text = "".join(
        c.choices[0].delta.content or "" for c in streamed if c.choices and c.choices[0].index == 0
    )
    assert [c.index for c in again.choices] == [0, 1]
    assert again.choices[0].message.content == text

    messages = client.chat.completions.messages.list(kept.id)
    assert [(m.role, m.content) for m in messages.data] == [  # type: ignore[comparison-overlap]
        ("system", "Be brief."),
        ("user", "Hi there"),
    ]
    assert messages.data[1].content_parts is not None
    assert messages.data[0].id == f"{kept.id}-0"

    updated = client.chat.completions.update(kept.id, metadata={"run": "moved"})
    assert updated.metadata == {"run": "moved"}  # type: ignore[attr-defined]
    assert [c.id for c in client.chat.completions.list(metadata=tag).data] == [streamed[0].id]

    with pytest.raises(openai.NotFoundError):  # another project's: not found
        client_b.chat.completions.retrieve(kept.id)
    with pytest.raises(openai.NotFoundError):
        client_b.chat.completions.delete(kept.id)
    assert client_b.chat.completions.list(metadata=tag).data == []

    assert client.chat.completions.delete(kept.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve(kept.id)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.messages.list(kept.id)
