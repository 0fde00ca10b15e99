"""/v1/conversations and responses.create(conversation=...) through the SDK."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL


def test_crud_and_items(client: OpenAI) -> None:
    conv = client.conversations.create(
        metadata={"topic": "demo"},
        items=[{"type": "message", "role": "user", "content": "Hello!"}],
    )
    assert conv.id.startswith("conv_") and conv.metadata == {"topic": "demo"}
    items = client.conversations.items.list(conv.id, order="asc")
    assert [i.type for i in items.data] == ["message"]
    added = client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "assistant", "content": "Hi."}]
    )
    assert len(added.data) == 1
    item = client.conversations.items.retrieve(added.data[0].id, conversation_id=conv.id)
    assert item.id == added.data[0].id
    updated = client.conversations.update(conv.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}
    client.conversations.items.delete(added.data[0].id, conversation_id=conv.id)
    assert len(client.conversations.items.list(conv.id).data) == 1
    assert client.conversations.delete(conv.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_responses_read_and_append(client: OpenAI) -> None:
    conv = client.conversations.create()
    r1 = client.responses.create(
        model=FAST_MODEL, input="first", conversation=conv.id, max_output_tokens=16
    )
    assert r1.conversation is not None and r1.conversation.id == conv.id
    r2 = client.responses.create(
        model=FAST_MODEL, input="second", conversation={"id": conv.id}, max_output_tokens=16
    )
    kinds = [
        (i.type, getattr(i, "role", None))
        for i in client.conversations.items.list(conv.id, order="asc").data
    ]
    assert kinds == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    # The second response saw the first exchange.
    assert r1.usage and r2.usage and r2.usage.input_tokens > r1.usage.input_tokens
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model=FAST_MODEL, input="x", conversation=conv.id, previous_response_id=r1.id
        )


def test_isolated_per_project(client: OpenAI, client_b: OpenAI) -> None:
    conv = client.conversations.create()
    for call in (
        lambda: client_b.conversations.retrieve(conv.id),
        lambda: client_b.conversations.items.list(conv.id),
        lambda: client_b.conversations.delete(conv.id),
        lambda: client_b.responses.create(model=FAST_MODEL, input="x", conversation=conv.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
