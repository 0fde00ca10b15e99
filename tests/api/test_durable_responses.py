"""Responses are stored from their first event: retrieve, input_items and cancel work while
they stream, a running one reads in_progress with its output so far, and one whose server
was killed (-9) mid-stream ends failed with that output, its resumed stream keeping the
numbers the client saw and ending with response.failed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.helpers import Server, assert_stream_grammar, new_key

# Measured with the embedded default at temperature 0: 600 tokens in about 7 s (a counting
# prompt stopped after 69 tokens in 0.8 s, before the first once-a-second write).
LONG = "Write a long story about a dragon who learns to cook."
ASK: dict[str, Any] = {"model": "gpt-4o", "input": LONG, "max_output_tokens": 600, "temperature": 0}


def text_of(response: Any) -> str:
    return "".join(
        part.text
        for item in response.output
        if item.type == "message"
        for part in item.content
        if part.type == "output_text"
    )


def test_a_streamed_response_is_stored_from_its_first_event(client: OpenAI) -> None:
    stream = client.responses.create(**ASK, stream=True)
    events: list[Any] = []
    seen_running = ""
    for event in stream:
        events.append(event)
        response_id = events[0].response.id
        if event.type == "response.created":
            early = client.responses.retrieve(response_id)
            assert early.status == "in_progress"
            items = client.responses.input_items.list(response_id)
            assert items.data[0].type == "message"
        elif event.type == "response.output_text.delta" and not seen_running:
            running = client.responses.retrieve(response_id)
            if running.status == "in_progress":
                seen_running = text_of(running)
    assert_stream_grammar(events)
    final = client.responses.retrieve(events[0].response.id)
    assert final.status == events[-1].response.status
    assert final.output_text == events[-1].response.output_text
    # While it ran, a retrieve showed the text so far (written at least every second).
    assert seen_running and final.output_text.startswith(seen_running)


def test_a_running_background_response_reads_in_progress_with_its_output(
    client: OpenAI,
) -> None:
    response_id, _ = run_until_stored_text(
        client, client.responses.create(**ASK, background=True, stream=True)
    )
    running = client.responses.retrieve(response_id)
    assert running.status == "in_progress" and text_of(running)
    assert client.responses.cancel(response_id).status == "cancelled"


@pytest.fixture
def killed(tmp_path: Path) -> Iterator[tuple[Server, OpenAI]]:
    srv = Server(tmp_path / "d", KOTAE_LEASE_SECONDS="2")
    yield srv, OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
    srv.stop()


def run_until_stored_text(c: OpenAI, stream: Any) -> tuple[str, list[Any]]:
    """Reads the stream until a retrieve shows stored text (no sleeping on a guess)."""
    events = []
    for event in stream:
        events.append(event)
        stored = (
            event.type == "response.output_text.delta"
            and len(events) % 10 == 0
            and text_of(c.responses.retrieve(events[0].response.id))
        )
        if stored:
            return events[0].response.id, events
    raise AssertionError("the response ended before its text was stored")


def kill_and_restart(srv: Server, data_dir: Path) -> Server:
    srv.kill()
    return Server(data_dir, KOTAE_LEASE_SECONDS="2")


def test_background_stream_resumes_after_a_kill_with_its_numbers_and_its_end(
    killed: tuple[Server, OpenAI], tmp_path: Path
) -> None:
    srv, c = killed
    response_id, seen = run_until_stored_text(
        c, c.responses.create(**ASK, background=True, stream=True)
    )
    last = seen[-1].sequence_number
    again = kill_and_restart(srv, tmp_path / "d")
    try:
        c = OpenAI(base_url=again.base_url, api_key=c.api_key, max_retries=0)
        resumed = list(c.responses.retrieve(response_id, stream=True, starting_after=last))
        numbers = [e.sequence_number for e in resumed]
        assert numbers == list(range(last + 1, last + 1 + len(numbers)))
        assert resumed[-1].type == "response.failed"
        # The whole stream, replayed from the start, is the one the client saw, then the end.
        replayed = list(c.responses.retrieve(response_id, stream=True))
        assert [e.sequence_number for e in replayed[: len(seen)]] == [
            e.sequence_number for e in seen
        ]
        assert [e.type for e in replayed[: len(seen)]] == [e.type for e in seen]
        after = c.responses.retrieve(response_id)
        assert after.status == "failed" and after.error is not None
        assert "stopped" in after.error.message
        assert text_of(after), "the output so far is kept"
    finally:
        again.stop()


def test_a_stored_stream_cut_by_a_kill_ends_failed_with_its_output(
    killed: tuple[Server, OpenAI], tmp_path: Path
) -> None:
    srv, c = killed
    response_id, _ = run_until_stored_text(c, c.responses.create(**ASK, stream=True))
    again = kill_and_restart(srv, tmp_path / "d")
    try:
        c = OpenAI(base_url=again.base_url, api_key=c.api_key, max_retries=0)
        deadline = time.monotonic() + 30
        after = c.responses.retrieve(response_id)
        while after.status == "in_progress" and time.monotonic() < deadline:
            time.sleep(0.1)  # until the lapsed lease (2 s here) is noticed
            after = c.responses.retrieve(response_id)
        assert after.status == "failed" and text_of(after)
    finally:
        again.stop()
