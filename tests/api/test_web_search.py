"""web_search_preview / web_search through the SDK, against a SearXNG stand-in on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL, REAL_MODEL
from tests.helpers import OPS, Server, assert_stream_grammar, new_key
from tests.standins import SearxngStandIn

NEWS = {
    "/ai/1": (
        "AI chip makers report record sales",
        "<html><head><title>AI chips</title></head><body><article><h1>AI chip makers "
        "report record sales</h1><p>Chip makers that build AI accelerators reported "
        "record quarterly sales on Monday, driven by data-centre demand.</p>"
        "</article></body></html>",
    ),
    "/ai/2": (
        "新しい日本語AIモデルが公開",
        "<html><body><article><h1>新しい日本語AIモデルが公開</h1><p>国内の研究機関が"
        "日本語に強い大規模言語モデルを公開した。</p></article></body></html>",
    ),
}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenAI, SearxngStandIn]]:
    stand_in = SearxngStandIn(NEWS)
    srv = Server(
        tmp_path_factory.mktemp("web"),
        KOTAE_WEB_SEARCH_PROVIDER="searxng",
        KOTAE_SEARXNG_URL=stand_in.url,
        KOTAE_FETCH_ALLOW_HOSTS="127.0.0.1",
    )
    client = OpenAI(
        base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0, timeout=120
    )
    yield client, stand_in
    srv.stop()
    stand_in.close()


QUESTION = "今日のAI業界の重要なニュースを3つ教えてください。"


def test_seed_step_3_required_search_with_url_citations(
    web: tuple[OpenAI, SearxngStandIn],
) -> None:
    client, stand_in = web
    before = len(stand_in.fetched)
    r = client.responses.create(
        model=REAL_MODEL,
        input=QUESTION,
        tools=[{"type": "web_search_preview"}],
        tool_choice="required",
        include=["web_search_call.action.sources"],
        max_output_tokens=160,
    )
    call = r.output[0]
    assert call.type == "web_search_call" and call.status == "completed"
    assert call.action.query == QUESTION  # type: ignore[union-attr]
    assert QUESTION in stand_in.queries
    sources = [s.url for s in call.action.sources]  # type: ignore[union-attr]
    assert sources == [f"{stand_in.url}/ai/1", f"{stand_in.url}/ai/2"]
    assert len(stand_in.fetched) - before == 2  # the pages were read, through the guard
    message = r.output[-1]
    notes = message.content[0].annotations  # type: ignore[union-attr]
    assert {n.url for n in notes} == set(sources)
    assert all(n.type == "url_citation" and n.end_index == len(r.output_text) for n in notes)
    assert notes[0].title == "AI chip makers report record sales"


def test_tool_choice_none_searches_nothing(web: tuple[OpenAI, SearxngStandIn]) -> None:
    client, stand_in = web
    before = len(stand_in.queries)
    r = client.responses.create(
        model=REAL_MODEL,
        input=QUESTION,
        tools=[{"type": "web_search_preview"}],
        tool_choice="none",
        max_output_tokens=30,
    )
    assert [o.type for o in r.output] == ["message"]
    assert len(stand_in.queries) == before


def test_forced_by_type_and_allowed_domains(web: tuple[OpenAI, SearxngStandIn]) -> None:
    client, _ = web
    r = client.responses.create(
        model=REAL_MODEL,
        input="AI news",
        max_output_tokens=30,
        tools=[{"type": "web_search", "filters": {"allowed_domains": ["example.org"]}}],
        tool_choice={"type": "web_search"},
        include=["web_search_call.action.sources"],
    )
    assert r.output[0].type == "web_search_call"
    assert r.output[0].action.sources == []  # type: ignore[union-attr]


def test_streamed_search_events(web: tuple[OpenAI, SearxngStandIn]) -> None:
    client, _ = web
    events = assert_stream_grammar(
        client.responses.create(
            model=REAL_MODEL,
            input=QUESTION,
            tools=[{"type": "web_search_preview"}],
            tool_choice="required",
            stream=True,
            max_output_tokens=30,
        )
    )
    types = [e.type for e in events]
    assert types[2:7] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    assert "response.output_text.annotation.added" in types


def test_provider_down_fails_the_call_and_the_model_answers_with_that(
    web: tuple[OpenAI, SearxngStandIn],
) -> None:
    # A built-in tool that fails is a failed call the model hears about, not a failed
    # response: the answer comes after it, as OpenAI's loop does.
    client, stand_in = web
    stand_in.down = True
    try:
        r = client.responses.create(
            model=REAL_MODEL,
            input=QUESTION,
            tools=[{"type": "web_search_preview"}],
            tool_choice="required",
            max_output_tokens=60,
        )
        assert r.status in ("completed", "incomplete")
        assert [o.type for o in r.output] == ["web_search_call", "message"]
        assert r.output[0].status == "failed" and r.output_text
        events = list(
            client.responses.create(
                model=REAL_MODEL,
                input=QUESTION,
                tools=[{"type": "web_search_preview"}],
                tool_choice="required",
                max_output_tokens=60,
                stream=True,
            )
        )
        assert_stream_grammar(events)
        assert events[-1].type in ("response.completed", "response.incomplete")
        done = [e.item for e in events if e.type == "response.output_item.done"]
        assert done[0].type == "web_search_call" and done[0].status == "failed"
    finally:
        stand_in.down = False


def test_offered_without_a_provider_is_left_off_the_menu(client: OpenAI, server: Server) -> None:
    """The newest Codex CLI offers web_search on every turn: a server without a search
    engine answers without it (the response still echoes it), and counts it."""
    tools: Any = [
        {"type": "web_search", "external_web_access": False},
        {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
    ]
    r = client.responses.create(
        model=FAST_MODEL, input="Say hello.", tools=tools, max_output_tokens=16
    )
    assert r.status in ("completed", "incomplete")
    assert [t.type for t in r.tools] == ["web_search", "function"]
    assert not [o for o in r.output if o.type == "web_search_call"]
    metrics = httpx.get(server.base_url.removesuffix("/v1") + "/metrics", headers=OPS).text
    assert 'kotae_tools_unavailable_total{tool="web_search"}' in metrics
    for choice in ("auto", "required"):
        # `required` with the function still there: the model calls the function.
        r = client.responses.create(
            model=FAST_MODEL, input="x", tools=tools, tool_choice=choice, max_output_tokens=16
        )
        assert r.error is None


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "web_search_preview"},
        {"type": "allowed_tools", "mode": "required", "tools": [{"type": "web_search_preview"}]},
        "required",
    ],
)
def test_forcing_it_without_a_provider_is_400(client: OpenAI, choice: Any) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model=FAST_MODEL,
            input="x",
            tools=[{"type": "web_search_preview"}],
            tool_choice=choice,
        )
    assert err.value.body["param"] == "tools[0].type"  # type: ignore[index]
    assert err.value.code == "web_search_not_configured"
    assert "KOTAE_WEB_SEARCH_PROVIDER" in err.value.message


def test_pages_on_private_addresses_are_not_read(tmp_path: Path) -> None:
    # The engine is allowed (it is the admin's); its results point at 127.0.0.1 pages,
    # which the guard refuses when 127.0.0.1 is not listed: the answer uses the snippets.
    stand_in = SearxngStandIn(NEWS)
    srv = Server(
        tmp_path / "d", KOTAE_WEB_SEARCH_PROVIDER="searxng", KOTAE_SEARXNG_URL=stand_in.url
    )
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        r = c.responses.create(
            model=REAL_MODEL,
            input="AI news",
            max_output_tokens=20,
            tools=[{"type": "web_search_preview"}],
            tool_choice="required",
        )
        assert r.output[0].type == "web_search_call"
        assert stand_in.fetched == []
    finally:
        srv.stop()
        stand_in.close()
