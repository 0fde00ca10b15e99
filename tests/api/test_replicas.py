"""Two API replicas on one state store (SQLite here; PostgreSQL + S3 in the scale-out pass):
a background response created on A is followed, resumed and cancelled on B while A runs it,
and when A is killed (-9) mid-stream B serves it failed, with the output A had stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.api.test_durable_responses import ASK, run_until_stored_text, text_of
from tests.helpers import Server, new_key, wait_until


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Server, Server, str]]:
    data = tmp_path / "d"
    a = Server(data, KOTAE_LEASE_SECONDS="2")
    # On the scale-out stack only A's worker takes work, so killing A stops the run.
    b = Server(data, log_name="serve-b.log", worker=False, KOTAE_LEASE_SECONDS="2")
    yield a, b, new_key(a.env, "p")
    for srv in (a, b):
        if srv.proc.poll() is None:
            srv.stop()


def sdk(srv: Server, key: str) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=120)


def test_resume_and_cancel_on_the_other_replica(replicas: tuple[Server, Server, str]) -> None:
    a, b, key = replicas
    on_a, on_b = sdk(a, key), sdk(b, key)
    response_id, seen = run_until_stored_text(
        on_a, on_a.responses.create(**ASK, background=True, stream=True)
    )
    last = seen[-1].sequence_number
    # B replays from the store what A has sent, with A's numbers, and follows what comes.
    resumed: list[Any] = []
    for event in on_b.responses.retrieve(response_id, stream=True, starting_after=last):
        resumed.append(event)
        if len(resumed) == 5:
            break
    assert [e.sequence_number for e in resumed] == list(range(last + 1, last + 6))
    running = on_b.responses.retrieve(response_id)
    assert running.status == "in_progress" and text_of(running)
    # B cancels what A runs: A stops it, and both read it cancelled.
    assert on_b.responses.cancel(response_id).status == "cancelled"
    assert on_a.responses.retrieve(response_id).status == "cancelled"


def test_a_replica_killed_mid_stream_leaves_the_response_to_the_other(
    replicas: tuple[Server, Server, str],
) -> None:
    a, b, key = replicas
    on_a, on_b = sdk(a, key), sdk(b, key)
    response_id, seen = run_until_stored_text(
        on_a, on_a.responses.create(**ASK, background=True, stream=True)
    )
    a.kill()
    # A's lease lapses (2 s): B fails the response, keeping the output A stored.
    wait_until(lambda: on_b.responses.retrieve(response_id).status == "failed", 60, "B to fail it")
    after = on_b.responses.retrieve(response_id)
    assert after.error is not None and text_of(after)
    ended = list(
        on_b.responses.retrieve(response_id, stream=True, starting_after=seen[-1].sequence_number)
    )
    assert ended[-1].type == "response.failed"
