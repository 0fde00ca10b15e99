"""/v1/batches through the SDK: an input file of requests becomes output and error files in
OpenAI's shape, run by the server's worker through the same services as the online routes."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from kotae.services.batches.store import BatchStore
from tests.conftest import FAST_MODEL
from tests.helpers import Server, new_key, state_engine

ENDS = ("completed", "failed", "cancelled", "expired")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("batches"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def c(srv: Server) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "a"), max_retries=0)


@pytest.fixture(scope="module")
def other(srv: Server) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "b"), max_retries=0)


def upload(c: OpenAI, lines: list[dict[str, Any]], purpose: Any = "batch") -> str:
    data = "\n".join(json.dumps(line) for line in lines).encode()
    return c.files.create(file=("requests.jsonl", io.BytesIO(data)), purpose=purpose).id


def line(custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def wait(c: OpenAI, batch_id: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = c.batches.retrieve(batch_id)
        if batch.status in ENDS:
            return batch
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} is still {batch.status}")


def jsonl(c: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(x) for x in c.files.content(file_id).text.splitlines() if x]


def test_a_chat_batch_completes_with_outputs_matching_its_custom_ids(c: OpenAI) -> None:
    lines = [
        line(
            f"q-{i}",
            "/v1/chat/completions",
            {
                "model": FAST_MODEL,
                "messages": [{"role": "user", "content": f"Hi {i}"}],
                "max_tokens": 8,
            },
        )
        for i in range(5)
    ]
    lines.append(line("bad", "/v1/chat/completions", {"model": FAST_MODEL, "messages": []}))
    batch = c.batches.create(
        input_file_id=upload(c, lines),
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "nightly"},
    )
    assert batch.status == "validating" and batch.id.startswith("batch_")
    assert batch.metadata == {"job": "nightly"} and batch.expires_at == batch.created_at + 86400
    done = wait(c, batch.id)
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (
        done.request_counts.total,
        done.request_counts.completed,
        done.request_counts.failed,
    ) == (6, 5, 1)
    assert done.model == FAST_MODEL
    assert done.in_progress_at and done.finalizing_at and done.completed_at
    output = jsonl(c, done.output_file_id)
    assert sorted(o["custom_id"] for o in output) == [f"q-{i}" for i in range(5)]
    first = output[0]
    assert first["id"].startswith("batch_req_") and first["error"] is None
    assert first["response"]["status_code"] == 200
    assert first["response"]["body"]["object"] == "chat.completion"
    assert first["response"]["request_id"]
    errors = jsonl(c, done.error_file_id)
    assert [e["custom_id"] for e in errors] == ["bad"]
    assert errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert c.files.retrieve(done.output_file_id).purpose == "batch_output"


def test_responses_and_embeddings_batches(c: OpenAI) -> None:
    responses = [
        line(
            f"r{i}",
            "/v1/responses",
            {"model": FAST_MODEL, "input": "hello", "max_output_tokens": 16},
        )
        for i in range(3)
    ]
    b1 = c.batches.create(
        input_file_id=upload(c, responses), endpoint="/v1/responses", completion_window="24h"
    )
    embeddings = [
        line(f"e{i}", "/v1/embeddings", {"model": "text-embedding-3-small", "input": f"text {i}"})
        for i in range(20)
    ]
    b2 = c.batches.create(
        input_file_id=upload(c, embeddings), endpoint="/v1/embeddings", completion_window="24h"
    )
    r = wait(c, b1.id)
    assert r.status == "completed" and r.request_counts.completed == 3
    bodies = [o["response"]["body"] for o in jsonl(c, r.output_file_id)]
    assert all(b["object"] == "response" and b["id"].startswith("resp_") for b in bodies)
    e = wait(c, b2.id)
    assert e.status == "completed" and e.request_counts.completed == 20
    vectors = {
        o["custom_id"]: o["response"]["body"]["data"][0]["embedding"]
        for o in jsonl(c, e.output_file_id)
    }
    assert set(vectors) == {f"e{i}" for i in range(20)} and len(vectors["e0"]) > 100


def test_bad_files_fail_validation_naming_each_line(c: OpenAI) -> None:
    chat = {"model": FAST_MODEL, "messages": [{"role": "user", "content": "x"}]}
    lines = [
        line("a", "/v1/chat/completions", chat),
        line("a", "/v1/chat/completions", chat),  # duplicate custom_id
        line("b", "/v1/embeddings", chat),  # another endpoint
        line("c", "/v1/chat/completions", {**chat, "model": "no-such-model"}),
    ]
    batch = c.batches.create(
        input_file_id=upload(c, lines), endpoint="/v1/chat/completions", completion_window="24h"
    )
    failed = wait(c, batch.id)
    assert failed.status == "failed" and failed.failed_at
    assert failed.errors is not None and failed.errors.data is not None
    found = {(e.line, e.code) for e in failed.errors.data}
    assert found == {(2, "duplicate_custom_id"), (3, "mismatched_endpoint"), (4, "model_not_found")}
    assert failed.output_file_id is None


def test_create_is_checked(c: OpenAI) -> None:
    ok = upload(c, [line("a", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"})])
    with pytest.raises(openai.NotFoundError):
        c.batches.create(
            input_file_id="file-nope", endpoint="/v1/embeddings", completion_window="24h"
        )
    wrong = upload(c, [line("a", "/v1/embeddings", {"model": "x", "input": "x"})], "assistants")
    with pytest.raises(openai.BadRequestError) as bad:
        c.batches.create(input_file_id=wrong, endpoint="/v1/embeddings", completion_window="24h")
    assert bad.value.param == "input_file_id"
    with pytest.raises(openai.BadRequestError) as bad:
        c.batches.create(input_file_id=ok, endpoint="/v1/videos", completion_window="24h")  # type: ignore[arg-type]
    assert bad.value.param == "endpoint"
    with pytest.raises(openai.BadRequestError):
        c.batches.create(input_file_id=ok, endpoint="/v1/embeddings", completion_window="1h")  # type: ignore[arg-type]


def test_cancel_keeps_what_ran(c: OpenAI) -> None:
    lines = [
        line(
            f"s{i}", "/v1/responses", {"model": FAST_MODEL, "input": "hi", "max_output_tokens": 64}
        )
        for i in range(200)
    ]
    batch = c.batches.create(
        input_file_id=upload(c, lines), endpoint="/v1/responses", completion_window="24h"
    )
    while c.batches.retrieve(batch.id).status == "validating":
        time.sleep(0.05)
    cancelling = c.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at
    done = wait(c, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    counts = done.request_counts
    assert counts.total == 200 and counts.completed + counts.failed == 200 and counts.failed > 0
    not_run = [e for e in jsonl(c, done.error_file_id) if e["error"]]
    assert not_run and not_run[0]["error"]["code"] == "batch_cancelled"
    with pytest.raises(openai.BadRequestError):
        c.batches.cancel(
            wait(
                c,
                c.batches.create(
                    input_file_id=upload(c, lines[:1]),
                    endpoint="/v1/responses",
                    completion_window="24h",
                ).id,
            ).id
        )


def test_a_batch_past_its_window_expires_with_partial_results(c: OpenAI, srv: Server) -> None:
    lines = [
        line(
            f"x{i}", "/v1/responses", {"model": FAST_MODEL, "input": "hi", "max_output_tokens": 64}
        )
        for i in range(200)
    ]
    batch = c.batches.create(
        input_file_id=upload(c, lines), endpoint="/v1/responses", completion_window="24h"
    )
    while c.batches.retrieve(batch.id).status == "validating":
        time.sleep(0.05)
    BatchStore(state_engine(srv.env)).change(batch.id, {"expires_at": int(time.time()) - 1})
    done = wait(c, batch.id)
    assert done.status == "expired" and done.expired_at
    expired = [e for e in jsonl(c, done.error_file_id) if e["error"]]
    assert expired and expired[0]["error"]["code"] == "batch_expired"


def test_batches_belong_to_their_project(c: OpenAI, other: OpenAI) -> None:
    batch = c.batches.create(
        input_file_id=upload(
            c, [line("a", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"})]
        ),
        endpoint="/v1/embeddings",
        completion_window="24h",
    )
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        other.batches.cancel(batch.id)
    assert batch.id not in [b.id for b in other.batches.list()]
    assert batch.id in [b.id for b in c.batches.list(limit=100)]
    with pytest.raises(openai.NotFoundError):
        other.batches.create(
            input_file_id=batch.input_file_id, endpoint="/v1/embeddings", completion_window="24h"
        )
