"""Token log probabilities from the engines: Responses (`top_logprobs`, the
`message.output_text.logprobs` include, delta events) and Chat Completions, embedded and
through a remote OpenAI-compatible engine."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from openai import OpenAI

from tests.conftest import REAL_MODEL
from tests.helpers import Server, new_key

QUESTION = "What is the capital of France?"


def check_tokens(tokens: list, text: str, top: int) -> None:
    assert tokens, "no logprobs"
    joined = b"".join(bytes(t.bytes) for t in tokens).decode("utf-8", errors="replace")
    assert joined.startswith(text.strip()[:10]) or text.startswith(joined[:10])
    for token in tokens:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == top
        probs = [math.exp(a.logprob) for a in token.top_logprobs]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
        # Greedy decoding (temperature 0) picks the likeliest token.
        assert token.top_logprobs[0].token == token.token
        assert math.isclose(token.top_logprobs[0].logprob, token.logprob, abs_tol=1e-4)


def test_responses_return_logprobs_when_included(client: OpenAI) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input=QUESTION,
        temperature=0,
        top_logprobs=3,
        include=["message.output_text.logprobs"],
        max_output_tokens=24,
    )
    assert r.top_logprobs == 3
    part = r.output[-1].content[0]
    check_tokens(part.logprobs, part.text, 3)
    assert len(part.logprobs) == r.usage.output_tokens
    # Kept with the stored response.
    again = client.responses.retrieve(r.id).output[-1].content[0]
    assert [t.logprob for t in again.logprobs] == [t.logprob for t in part.logprobs]


def test_without_the_include_the_part_has_none(client: OpenAI) -> None:
    r = client.responses.create(model=REAL_MODEL, input=QUESTION, max_output_tokens=16)
    assert r.output[-1].content[0].logprobs == []
    assert r.top_logprobs == 0


def test_streamed_deltas_carry_their_tokens(client: OpenAI) -> None:
    deltas = []
    done = None
    final = None
    with client.responses.stream(
        model=REAL_MODEL,
        input=QUESTION,
        temperature=0,
        top_logprobs=2,
        include=["message.output_text.logprobs"],
        max_output_tokens=24,
    ) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event)
            elif event.type == "response.output_text.done":
                done = event
            elif event.type in ("response.completed", "response.incomplete"):
                final = event.response
    tokens = [t for d in deltas for t in d.logprobs]
    assert tokens and all(len(t.top_logprobs) == 2 for t in tokens)
    # Each delta's tokens spell (at least the start of) its text.
    assert "".join(t.token for t in tokens).startswith(deltas[0].delta[:1])
    assert done is not None and [t.logprob for t in done.logprobs] == [t.logprob for t in tokens]
    assert final is not None
    part = final.output[-1].content[0]
    assert [t.logprob for t in part.logprobs] == [t.logprob for t in tokens]


def test_chat_completions_logprobs(client: OpenAI) -> None:
    c = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        logprobs=True,
        top_logprobs=4,
        max_tokens=16,
    )
    content = c.choices[0].logprobs.content
    check_tokens(content, c.choices[0].message.content, 4)
    assert len(content) == c.usage.completion_tokens
    chunks = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        logprobs=True,
        top_logprobs=1,
        max_tokens=16,
        stream=True,
    )
    streamed = [
        t
        for ch in chunks
        if ch.choices and ch.choices[0].logprobs
        for t in ch.choices[0].logprobs.content
    ]
    assert [t.token for t in streamed] == [t.token for t in content]
    plain = client.chat.completions.create(
        model=REAL_MODEL, messages=[{"role": "user", "content": QUESTION}], max_tokens=8
    )
    assert plain.choices[0].logprobs is None


@pytest.fixture(scope="module")
def remote(
    server: Server, key_a: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenAI]:
    """A second kotae whose model is the first one's, reached as a remote engine."""
    models = [
        {
            "id": "upstream",
            "backend": "openai_compat",
            "base_url": server.base_url,
            "api_key": key_a,
            "remote_model": REAL_MODEL,
        }
    ]
    srv = Server(tmp_path_factory.mktemp("front"), KOTAE_MODELS=json.dumps(models))
    yield OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0, timeout=120)
    srv.stop()


def test_logprobs_through_a_remote_engine(remote: OpenAI) -> None:
    r = remote.responses.create(
        model="upstream",
        input=QUESTION,
        temperature=0,
        top_logprobs=2,
        include=["message.output_text.logprobs"],
        max_output_tokens=16,
    )
    part = r.output[-1].content[0]
    check_tokens(part.logprobs, part.text, 2)
    with remote.responses.stream(
        model="upstream",
        input=QUESTION,
        temperature=0,
        top_logprobs=2,
        include=["message.output_text.logprobs"],
        max_output_tokens=16,
    ) as stream:
        tokens = [t for e in stream if e.type == "response.output_text.delta" for t in e.logprobs]
    assert [t.token for t in tokens] == [t.token for t in part.logprobs]
