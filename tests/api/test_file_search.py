"""The file_search tool in /v1/responses: seed step 2 through the SDK."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.api.test_vector_stores import create_and_poll, japanese_pdf
from tests.conftest import REAL_MODEL
from tests.helpers import assert_stream_grammar

QUESTION = "社内向けドキュメントのパスワード再設定手順は？"


@pytest.fixture(scope="module")
def kb(client: OpenAI) -> tuple[str, str]:
    pdf = client.files.create(file=("company_faq.pdf", japanese_pdf()), purpose="assistants")
    other = client.files.create(
        file=("menu.txt", b"The cafeteria serves curry on Fridays."), purpose="assistants"
    )
    vs = create_and_poll(client, name="knowledge_base", file_ids=[pdf.id, other.id])
    return vs.id, pdf.id


def tool(store: str) -> list[dict[str, object]]:
    return [{"type": "file_search", "vector_store_ids": [store]}]


def test_seed_step_2_searches_and_cites_the_pdf(client: OpenAI, kb: tuple[str, str]) -> None:
    store, pdf_id = kb
    r = client.responses.create(
        model=REAL_MODEL,
        input=QUESTION,
        tools=tool(store),
        include=["file_search_call.results"],
        max_output_tokens=120,
    )
    call = r.output[0]
    assert call.type == "file_search_call" and call.status == "completed"
    assert QUESTION in call.queries
    assert call.results and call.results[0].file_id == pdf_id
    assert "パスワード" in (call.results[0].text or "")
    message = r.output[-1]
    assert message.type == "message"
    annotations = message.content[0].annotations  # type: ignore[union-attr]
    assert annotations and annotations[0].type == "file_citation"
    assert annotations[0].file_id == pdf_id and annotations[0].filename == "company_faq.pdf"
    assert r.tools[0].type == "file_search"
    # The search turn is counted in usage.
    assert r.usage is not None and r.usage.input_tokens > 100


def test_results_only_when_included(client: OpenAI, kb: tuple[str, str]) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input=QUESTION,
        tools=tool(kb[0]),
        tool_choice={"type": "file_search"},
        max_output_tokens=30,
    )
    assert r.output[0].type == "file_search_call" and r.output[0].results is None


def test_tool_choice_none_and_small_talk_do_not_search(client: OpenAI, kb: tuple[str, str]) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input=QUESTION,
        tools=tool(kb[0]),
        tool_choice="none",
        max_output_tokens=30,
    )
    assert [o.type for o in r.output] == ["message"]
    # The model decides, under a grammar, that a greeting needs no search.
    r = client.responses.create(
        model=REAL_MODEL, input="Hello! How are you?", tools=tool(kb[0]), max_output_tokens=30
    )
    assert [o.type for o in r.output] == ["message"]


def test_forced_search_and_required(client: OpenAI, kb: tuple[str, str]) -> None:
    for choice in ({"type": "file_search"}, "required"):
        r = client.responses.create(
            model=REAL_MODEL,
            input="Hello!",
            tools=tool(kb[0]),
            tool_choice=choice,
            max_output_tokens=20,
        )  # type: ignore[arg-type]
        assert r.output[0].type == "file_search_call"


def test_streamed_search_events(client: OpenAI, kb: tuple[str, str]) -> None:
    events = assert_stream_grammar(
        client.responses.create(
            model=REAL_MODEL,
            input=QUESTION,
            tools=tool(kb[0]),
            stream=True,
            tool_choice={"type": "file_search"},
            max_output_tokens=40,
        )
    )
    types = [e.type for e in events]
    assert types[2:5] == [
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
    ]
    assert types[5:7] == ["response.file_search_call.completed", "response.output_item.done"]
    assert "response.output_text.annotation.added" in types
    assert types.index("response.output_text.annotation.added") < types.index(
        "response.output_text.done"
    )
    final = events[-1].response
    assert final.output[-1].content[0].annotations  # type: ignore[union-attr]


def test_thread_continues_after_a_search(client: OpenAI, kb: tuple[str, str]) -> None:
    r1 = client.responses.create(
        model=REAL_MODEL,
        input=QUESTION,
        tools=tool(kb[0]),
        tool_choice={"type": "file_search"},
        max_output_tokens=30,
    )
    r2 = client.responses.create(
        model=REAL_MODEL,
        input="Thanks. And in English?",
        previous_response_id=r1.id,
        max_output_tokens=30,
    )
    assert r2.output_text
    stored = client.responses.retrieve(r1.id)
    assert stored.output[0].type == "file_search_call"


def test_unknown_or_foreign_store_is_404(
    client: OpenAI, client_b: OpenAI, kb: tuple[str, str]
) -> None:
    for c, store in ((client, "vs_missing"), (client_b, kb[0])):
        with pytest.raises(openai.NotFoundError) as err:
            c.responses.create(model=REAL_MODEL, input="x", tools=tool(store))
        assert err.value.body["param"] == "tools[0].vector_store_ids"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model=REAL_MODEL, input="x", tools=[{"type": "file_search", "vector_store_ids": []}]
        )
