"""POST /v1/responses/input_tokens, POST /v1/responses/compact, and context_management
compaction on create, through the SDK against the real model."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL, REAL_MODEL

FACTS = [
    "My name is Aiko and I live in Sapporo.",
    "I am planning a trip to Kyoto in April to see the cherry blossoms.",
    "I want to visit Kinkaku-ji and Fushimi Inari on the first day.",
    "My budget for the hotel is 15000 yen a night.",
]


def test_input_tokens_counts_what_create_would_send(client: OpenAI) -> None:
    short = client.responses.input_tokens.count(model=REAL_MODEL, input="Hello")
    assert short.object == "response.input_tokens"
    longer = client.responses.input_tokens.count(
        model=REAL_MODEL, input="Hello", instructions="Answer in one word. " * 20
    )
    assert longer.input_tokens > short.input_tokens > 0
    r = client.responses.create(model=REAL_MODEL, input="Hello", max_output_tokens=16)
    assert r.usage is not None and r.usage.input_tokens == short.input_tokens
    # A thread counts its history.
    follow = client.responses.input_tokens.count(
        model=REAL_MODEL, input="And then?", previous_response_id=r.id
    )
    alone = client.responses.input_tokens.count(model=REAL_MODEL, input="And then?")
    assert follow.input_tokens > alone.input_tokens
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.input_tokens.count(model=REAL_MODEL, input="x", extra_body={"bogus": 1})
    assert err.value.body["param"] == "bogus"
    with pytest.raises(openai.NotFoundError):
        client.responses.input_tokens.count(model="no-such-model", input="x")


def thread(client: OpenAI) -> str:
    previous = None
    for fact in FACTS:
        r = client.responses.create(
            model=REAL_MODEL,
            input=fact,
            previous_response_id=previous,
            max_output_tokens=120,
            temperature=0,
        )
        previous = r.id
    assert previous is not None
    return previous


def test_compact_keeps_user_messages_and_summarizes_the_rest(client: OpenAI) -> None:
    last = thread(client)
    compacted = client.responses.compact(model=REAL_MODEL, previous_response_id=last)
    assert compacted.object == "response.compaction"
    kinds = [item.type for item in compacted.output]
    assert kinds == ["message"] * len(FACTS) + ["compaction"]
    assert [m.content[0].text for m in compacted.output[:-1]] == FACTS
    item = compacted.output[-1]
    assert item.id.startswith("cmp_") and item.encrypted_content
    assert compacted.usage.output_tokens > 0 and compacted.usage.input_tokens > 0
    # The compacted output is the next request's input, and costs fewer tokens than the thread.
    next_input = [i.model_dump(exclude_none=True, warnings=False) for i in compacted.output]
    next_input.append({"role": "user", "content": "Where do I live?"})
    before = client.responses.input_tokens.count(
        model=REAL_MODEL, input="Where do I live?", previous_response_id=last
    )
    after = client.responses.input_tokens.count(model=REAL_MODEL, input=next_input)
    assert after.input_tokens < before.input_tokens
    answer = client.responses.create(model=REAL_MODEL, input=next_input, max_output_tokens=40)
    assert answer.status in ("completed", "incomplete") and answer.output_text
    # A compaction this server did not make is refused.
    forged = [*next_input[:-2], {**next_input[-2], "encrypted_content": "gAAAA-not-ours"}]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=REAL_MODEL, input=forged)
    assert err.value.body["param"].endswith(".encrypted_content")


def test_context_management_compacts_a_long_thread_first(client: OpenAI) -> None:
    last = thread(client)
    r = client.responses.create(
        model=REAL_MODEL,
        input="What is my hotel budget?",
        previous_response_id=last,
        context_management=[{"type": "compaction", "compact_threshold": 1000}],
        max_output_tokens=40,
    )
    # Under the threshold: no compaction; the thread is short.
    assert all(item.type != "compaction" for item in r.output)
    # An agent's thread: a tool returned a long result (tool output is summarized; only the
    # user's own messages are kept word for word).
    listing = "\n".join(f"hotel {i}: {9000 + 37 * i} yen, {i % 5} stars" for i in range(150))
    long_thread = client.responses.create(
        model=REAL_MODEL,
        input=[
            {"type": "function_call", "call_id": "c1", "name": "hotels", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": listing},
        ],
        previous_response_id=last,
        max_output_tokens=16,
    )
    with client.responses.stream(
        model=REAL_MODEL,
        input="What is my hotel budget?",
        previous_response_id=long_thread.id,
        context_management=[{"type": "compaction", "compact_threshold": 1000}],
        max_output_tokens=40,
    ) as stream:
        events = list(stream)
    final = events[-1].response
    assert final.output[0].type == "compaction"
    added = [e for e in events if e.type == "response.output_item.added"]
    assert added[0].item.type == "compaction"
    # The next turn continues from the compaction: its prompt is the smaller one.
    cost_long = client.responses.input_tokens.count(
        model=REAL_MODEL, input="Thanks", previous_response_id=long_thread.id
    )
    cost_compacted = client.responses.input_tokens.count(
        model=REAL_MODEL, input="Thanks", previous_response_id=final.id
    )
    assert cost_compacted.input_tokens < cost_long.input_tokens


@pytest.mark.parametrize(
    ("entry", "param"),
    [
        ({"type": "truncate"}, "context_management[0].type"),
        (
            {"type": "compaction", "compact_threshold": 10},
            "context_management[0].compact_threshold",
        ),
        ({"type": "compaction", "bogus": 1}, "context_management[0].bogus"),
    ],
)
def test_bad_context_management_is_400(client: OpenAI, entry: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input="x", context_management=[entry])
    assert err.value.body["param"] == param
