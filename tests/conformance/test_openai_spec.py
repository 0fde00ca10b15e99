"""Every operation kotae serves, called through the official SDK on a real server, with every
answer and every streamed event validated against OpenAI's own OpenAPI document."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image

from tests.api.test_images import pulled_server, tiny_hub  # noqa: F401 (fixture)
from tests.conformance import oracle
from tests.conftest import FAST_MODEL, REAL_MODEL
from tests.helpers import Server, new_key
from tests.standins import FakeHub

pytestmark = pytest.mark.skipif(not oracle.SPEC_PATH.exists(), reason="no OpenAI spec here")


@pytest.fixture(scope="module")
def spec_server(tmp_path_factory: pytest.TempPathFactory, tiny_hub: FakeHub) -> Iterator[Server]:  # noqa: F811
    srv = pulled_server(tmp_path_factory.mktemp("conformance"), tiny_hub)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def recorder() -> oracle.Recorder:
    return oracle.Recorder()


@pytest.fixture(scope="module")
def sdk(spec_server: Server, recorder: oracle.Recorder) -> Iterator[OpenAI]:
    http = httpx.Client(event_hooks={"response": [recorder.hook]}, timeout=300)
    yield OpenAI(
        base_url=spec_server.base_url,
        api_key=new_key(spec_server.env, "conformance"),
        max_retries=0,
        http_client=http,
    )
    http.close()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (64, 64), (200, 80, 40, 255)).save(out, "PNG")
    return out.getvalue()


def wait(check: object, done: tuple[str, ...], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if getattr(check(), "status", None) in done:  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"never reached {done}")


def tour_responses(c: OpenAI) -> None:
    r = c.responses.create(model=REAL_MODEL, input="Say hello.", max_output_tokens=24)
    c.responses.create(
        model=FAST_MODEL,
        input="Name: Tom",
        max_output_tokens=32,
        text={
            "format": {
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
        },
    )
    list(
        c.responses.create(
            model=REAL_MODEL,
            input="Count to three.",
            stream=True,
            max_output_tokens=24,
            top_logprobs=2,
            include=["message.output_text.logprobs"],
        )
    )
    c.responses.create(
        model=FAST_MODEL,
        input="Call the tool.",
        tools=[
            {
                "type": "function",
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
        ],
        tool_choice="required",
        max_output_tokens=64,
    )
    c.responses.retrieve(r.id)
    list(c.responses.retrieve(r.id, stream=True))
    c.responses.input_items.list(r.id, limit=1)
    c.responses.input_tokens.count(model=REAL_MODEL, input="Hello")
    c.responses.compact(model=REAL_MODEL, previous_response_id=r.id)
    bg = c.responses.create(
        model=REAL_MODEL, input="Write a long story.", background=True, max_output_tokens=400
    )
    c.responses.cancel(bg.id)
    followed = c.responses.create(
        model=FAST_MODEL, input="x", background=True, stream=True, max_output_tokens=16
    )
    list(followed)
    c.responses.delete(r.id)


def tour_chat_and_embeddings(c: OpenAI) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    c.chat.completions.create(model=REAL_MODEL, messages=messages, max_tokens=16)
    list(
        c.chat.completions.create(
            model=REAL_MODEL,
            messages=messages,
            max_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
            logprobs=True,
            top_logprobs=2,
        )
    )
    c.embeddings.create(model="text-embedding-3-small", input=["hello", "こんにちは"])
    # Stored chat completions, streamed and not, with n > 1.
    stored = c.chat.completions.create(
        model=REAL_MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
        max_tokens=16,
        n=2,
        store=True,
        metadata={"tour": "yes"},
    )
    list(
        c.chat.completions.create(
            model=REAL_MODEL, messages=messages, max_tokens=16, stream=True, store=True
        )
    )
    c.chat.completions.list(metadata={"tour": "yes"}, limit=5)
    c.chat.completions.retrieve(stored.id)
    c.chat.completions.messages.list(stored.id)
    c.chat.completions.update(stored.id, metadata={"tour": "done"})
    c.chat.completions.delete(stored.id)
    # Legacy text completions.
    c.completions.create(model=REAL_MODEL, prompt=["Hello", "Bonjour"], max_tokens=8, logprobs=1)
    list(c.completions.create(model=REAL_MODEL, prompt="Hello", max_tokens=8, stream=True))


def tour_files_and_stores(c: OpenAI) -> None:
    f = c.files.create(
        file=("notes.txt", io.BytesIO(b"Kotae answers questions on your own machine.\n")),
        purpose="assistants",
    )
    c.files.list(limit=5)
    c.files.retrieve(f.id)
    c.files.content(f.id).read()
    up = c.uploads.create(bytes=5, filename="u.txt", mime_type="text/plain", purpose="assistants")
    part = c.uploads.parts.create(upload_id=up.id, data=b"hello")
    done = c.uploads.complete(upload_id=up.id, part_ids=[part.id])
    other = c.uploads.create(
        bytes=1, filename="x.txt", mime_type="text/plain", purpose="assistants"
    )
    c.uploads.cancel(other.id)
    vs = c.vector_stores.create(name="tour", file_ids=[f.id])
    c.vector_stores.list(limit=5)
    c.vector_stores.retrieve(vs.id)
    c.vector_stores.update(vs.id, name="tour 2", metadata={"k": "v"})
    wait(
        lambda: c.vector_stores.files.retrieve(file_id=f.id, vector_store_id=vs.id), ("completed",)
    )
    c.vector_stores.search(vs.id, query="own machine")
    assert done.file is not None
    c.vector_stores.files.create(vector_store_id=vs.id, file_id=done.file.id)
    c.vector_stores.files.list(vs.id)
    c.vector_stores.files.update(file_id=f.id, vector_store_id=vs.id, attributes={"lang": "en"})
    c.vector_stores.files.content(file_id=f.id, vector_store_id=vs.id)
    batch = c.vector_stores.file_batches.create(vector_store_id=vs.id, file_ids=[done.file.id])
    c.vector_stores.file_batches.retrieve(batch_id=batch.id, vector_store_id=vs.id)
    c.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=vs.id)
    c.vector_stores.file_batches.cancel(batch_id=batch.id, vector_store_id=vs.id)
    c.responses.create(
        model=REAL_MODEL,
        input="What does kotae do?",
        tools=[{"type": "file_search", "vector_store_ids": [vs.id]}],
        include=["file_search_call.results"],
        max_output_tokens=32,
    )
    c.vector_stores.files.delete(file_id=f.id, vector_store_id=vs.id)
    c.vector_stores.delete(vs.id)
    c.files.delete(f.id)


def tour_conversations(c: OpenAI) -> None:
    conv = c.conversations.create(items=[{"role": "user", "content": "Hello"}], metadata={"a": "b"})
    c.conversations.retrieve(conv.id)
    c.conversations.update(conv.id, metadata={"a": "c"})
    added = c.conversations.items.create(conv.id, items=[{"role": "user", "content": "Again"}])
    c.conversations.items.list(conv.id, limit=10)
    c.conversations.items.retrieve(added.data[0].id, conversation_id=conv.id)
    c.responses.create(model=FAST_MODEL, input="x", conversation=conv.id, max_output_tokens=16)
    c.conversations.items.delete(added.data[0].id, conversation_id=conv.id)
    c.conversations.delete(conv.id)


def tour_containers(c: OpenAI) -> None:
    f = c.files.create(file=("nums.csv", b"n\n1\n2\n"), purpose="user_data")
    box = c.containers.create(
        name="tour", file_ids=[f.id], expires_after={"anchor": "last_active_at", "minutes": 5}
    )
    c.containers.list(limit=5)
    c.containers.retrieve(box.id)
    added = c.containers.files.create(box.id, file=("a.txt", b"hello"))
    c.containers.files.list(box.id)
    c.containers.files.retrieve(added.id, container_id=box.id)
    c.containers.files.content.retrieve(added.id, container_id=box.id).read()
    for stream in (False, True):
        answer = c.responses.create(
            model=FAST_MODEL,
            input="Run some code.",
            tools=[{"type": "code_interpreter", "container": box.id}],
            tool_choice={"type": "code_interpreter"},
            include=["code_interpreter_call.outputs"],
            max_output_tokens=16,
            stream=stream,
        )
        if stream:
            list(answer)  # type: ignore[call-overload]
    c.containers.files.delete(added.id, container_id=box.id)
    c.containers.delete(box.id)
    c.files.delete(f.id)


def tour_batches(c: OpenAI) -> None:
    rows = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": "x"},
        }
        for i in range(2)
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    f = c.files.create(file=("batch.jsonl", io.BytesIO(data)), purpose="batch")
    batch = c.batches.create(
        input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h", metadata={"a": "b"}
    )
    wait(lambda: c.batches.retrieve(batch.id), ("completed", "failed"))
    c.batches.list(limit=5)
    bad = c.files.create(file=("bad.jsonl", io.BytesIO(b"not json\n")), purpose="batch")
    failed = c.batches.create(
        input_file_id=bad.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    wait(lambda: c.batches.retrieve(failed.id), ("failed",))
    many = "\n".join(json.dumps({**rows[0], "custom_id": f"m{i}"}) for i in range(200)).encode()
    more = c.files.create(file=("many.jsonl", io.BytesIO(many)), purpose="batch")
    cancelled = c.batches.create(
        input_file_id=more.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    c.batches.cancel(cancelled.id)
    wait(lambda: c.batches.retrieve(cancelled.id), ("cancelled",))


def tour_fine_tuning(c: OpenAI) -> None:
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(10)
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    f = c.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
    job = c.fine_tuning.jobs.create(
        training_file=f.id, model=FAST_MODEL, hyperparameters={"n_epochs": 50}
    )
    c.fine_tuning.jobs.list(limit=5)
    c.fine_tuning.jobs.retrieve(job.id)
    c.fine_tuning.jobs.list_events(job.id, limit=5)
    c.fine_tuning.jobs.checkpoints.list(job.id)
    with pytest.raises(openai.BadRequestError):
        c.fine_tuning.jobs.pause(job.id)
    with pytest.raises(openai.BadRequestError):
        c.fine_tuning.jobs.resume(job.id)
    c.fine_tuning.jobs.cancel(job.id)


def tour_images_and_models(c: OpenAI) -> None:
    c.images.generate(prompt="a red square", size="256x256", response_format="b64_json")
    c.images.edit(image=("a.png", png()), prompt="make it blue", response_format="b64_json")
    c.images.create_variation(image=("a.png", png()), response_format="b64_json")
    listed = c.models.list()
    c.models.retrieve(listed.data[0].id)
    with pytest.raises(openai.NotFoundError):
        c.models.delete("ft:nothing:here")


def tour_errors(c: OpenAI, base_url: str) -> None:
    with pytest.raises(openai.BadRequestError):
        c.responses.create(model=FAST_MODEL, input="x", extra_body={"bogus": 1})
    with pytest.raises(openai.BadRequestError):
        c.responses.retrieve("not-an-id")
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve("resp_" + "0" * 48)
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="no-such-model", input="x")
    bad = OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0, http_client=c._client)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_every_served_operation_matches_openais_spec(
    sdk: OpenAI, spec_server: Server, recorder: oracle.Recorder
) -> None:
    tour_responses(sdk)
    tour_chat_and_embeddings(sdk)
    tour_files_and_stores(sdk)
    tour_conversations(sdk)
    tour_containers(sdk)
    tour_batches(sdk)
    tour_fine_tuning(sdk)
    tour_images_and_models(sdk)
    tour_errors(sdk, spec_server.base_url)
    served = set(oracle.served_operations())
    missed = sorted(served - recorder.operations)
    print(
        f"\nconformance: {len(recorder.operations & served)}/{len(served)} operations, "
        f"{recorder.bodies} bodies and {recorder.events} events validated, "
        f"{len(recorder.violations)} violations; not called: {missed}"
    )
    grouped: dict[str, int] = {}
    for v in recorder.violations:
        key = f"{v.where} {re.sub(r'/[0-9]+', '/N', v.path)}: {v.message}"
        grouped[key] = grouped.get(key, 0) + 1
    shown = "\n".join(f"{n}x {key}" for key, n in grouped.items())
    assert not recorder.violations, f"{len(recorder.violations)} violations:\n{shown}"
    assert not missed, f"operations not exercised: {missed}"
    assert {400, 401, 404} <= recorder.statuses
