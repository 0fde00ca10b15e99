"""Webhooks through the SDK: endpoints made with `client.webhooks`, deliveries to a receiver on
loopback that `client.webhooks.unwrap` verifies (and a tampered one it refuses), retries with
backoff, the SSRF guard, and per-project endpoints."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL
from tests.helpers import Server, new_key
from tests.standins import ScriptedChatEngine
from tests.webhook_receiver import Receiver


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A stand-in engine whose model answers at once: its responses end "completed".
    engine = ScriptedChatEngine(["Done."])
    models = [{"id": "scripted", "backend": "openai_compat", "base_url": engine.url}]
    server = Server(
        tmp_path_factory.mktemp("webhooks"),
        KOTAE_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
        KOTAE_MODELS=json.dumps(models),
    )
    yield server
    server.stop()
    engine.close()


@pytest.fixture(scope="module")
def c(srv: Server) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "a"), max_retries=0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def deliveries(c: OpenAI) -> list[dict[str, Any]]:
    got = httpx.get(
        f"{c.base_url}webhook_deliveries", headers={"Authorization": f"Bearer {c.api_key}"}
    )
    got.raise_for_status()
    return list(got.json()["data"])


def test_batch_and_response_events_verify_with_the_sdk(c: OpenAI, receiver: Receiver) -> None:
    endpoint = c.webhooks.create(
        name="ops", url=receiver.url, event_types=["batch.completed", "response.completed"]
    )
    assert endpoint.signing_secret.startswith("whsec_") and endpoint.id.startswith("whep_")
    secret = endpoint.signing_secret
    data = json.dumps(
        {
            "custom_id": "one",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": "x"},
        }
    ).encode()
    f = c.files.create(file=("b.jsonl", io.BytesIO(data)), purpose="batch")
    batch = c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    background = c.responses.create(model="scripted", input="hi", background=True)
    got = receiver.wait_for(2)
    events = {}
    for body, headers in got:
        event = c.webhooks.unwrap(body, headers, secret=secret)
        events[event.type] = event
    assert events["batch.completed"].data.id == batch.id
    assert events["response.completed"].data.id == background.id
    assert all(e.object == "event" and e.id.startswith("evt_") for e in events.values())
    body, headers = got[0]
    with pytest.raises(openai.InvalidWebhookSignatureError):
        c.webhooks.unwrap(body.replace(b"}", b" }", 1), headers, secret=secret)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        c.webhooks.unwrap(body, headers, secret="whsec_" + "A" * 43 + "=")
    log = deliveries(c)
    assert {d["status"] for d in log[:2]} == {"delivered"}
    c.webhooks.delete(endpoint.id)


def test_a_failing_receiver_is_retried_with_backoff(c: OpenAI) -> None:
    receiver = Receiver(answers=[500])
    try:
        endpoint = c.webhooks.create(
            name="flaky", url=receiver.url, event_types=["response.incomplete"]
        )
        r = c.responses.create(model=FAST_MODEL, input="hi", background=True, max_output_tokens=16)
        first, second = receiver.wait_for(2, timeout=30)[:2]
        assert first[1]["webhook-id"] == second[1]["webhook-id"]  # the same event, again
        assert int(second[1]["webhook-timestamp"]) - int(first[1]["webhook-timestamp"]) >= 4
        mine = [d for d in deliveries(c) if d["event"]["data"]["id"] == r.id]
        assert mine[0]["status"] == "delivered" and mine[0]["attempts"] == 2
        c.webhooks.delete(endpoint.id)
    finally:
        receiver.close()


def test_private_receivers_need_the_allow_list(c: OpenAI) -> None:
    endpoint = c.webhooks.create(
        name="internal", url="http://10.0.0.1:9/hook", event_types=["response.incomplete"]
    )
    r = c.responses.create(model=FAST_MODEL, input="hi", background=True, max_output_tokens=16)
    deadline = time.monotonic() + 30
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not (mine and mine[0]["attempts"]):
        mine = [d for d in deliveries(c) if d["event"]["data"]["id"] == r.id]
        time.sleep(0.2)
    assert mine[0]["status"] == "pending" and "private or reserved" in mine[0]["last_error"]
    c.webhooks.delete(endpoint.id)
    after = [d for d in deliveries(c) if d["event"]["data"]["id"] == r.id]
    assert after[0]["status"] == "failed"


def test_endpoints_crud_rotate_and_test(c: OpenAI, srv: Server, receiver: Receiver) -> None:
    made = c.webhooks.create(name="crud", url=receiver.url, event_types=["batch.failed"])
    shown = c.webhooks.retrieve(made.id)
    assert shown.signing_secret_hint and not hasattr(shown, "signing_secret")
    assert made.id in [e.id for e in c.webhooks.list()]
    updated = c.webhooks.update(made.id, event_types=["batch.failed", "batch.expired"])
    assert updated.event_types == ["batch.failed", "batch.expired"] and updated.updated_at
    rotated = c.webhooks.rotate_secret(made.id, keep_old_secret_active_for_24_hours=True)
    assert rotated.signing_secret != made.signing_secret
    result = c.webhooks.test(made.id, event_type="batch.failed")
    assert result.status_code == 200 and result.webhook_endpoint_id == made.id
    body, headers = receiver.wait_for(1)[0]
    # Both secrets verify while the old one is kept.
    for secret in (made.signing_secret, rotated.signing_secret):
        assert c.webhooks.unwrap(body, headers, secret=secret).type == "batch.failed"
    assert "batch.completed" in c.webhooks.event_types.list().data
    with pytest.raises(openai.BadRequestError):
        c.webhooks.create(name="x", url=receiver.url, event_types=["video.completed"])
    with pytest.raises(openai.BadRequestError):
        c.webhooks.create(name="x", url="ftp://example.com", event_types=["batch.failed"])
    other = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "other"), max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.webhooks.retrieve(made.id)
    assert made.id not in [e.id for e in other.webhooks.list()]
    assert c.webhooks.delete(made.id).deleted
    with pytest.raises(openai.NotFoundError):
        c.webhooks.retrieve(made.id)


def test_a_failed_fine_tuning_job_is_announced(c: OpenAI, receiver: Receiver) -> None:
    endpoint = c.webhooks.create(
        name="ft", url=receiver.url, event_types=["fine_tuning.job.failed"]
    )
    bad = c.files.create(file=("t.jsonl", io.BytesIO(b'{"messages": 1}\n')), purpose="fine-tune")
    job = c.fine_tuning.jobs.create(training_file=bad.id, model=FAST_MODEL)
    body, headers = receiver.wait_for(1)[0]
    event = c.webhooks.unwrap(body, headers, secret=endpoint.signing_secret)
    assert event.type == "fine_tuning.job.failed" and event.data.id == job.id
    c.webhooks.delete(endpoint.id)
