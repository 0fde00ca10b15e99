"""The emitter and the service's event stream, driven by a scripted backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kotae.config import Settings
from kotae.errors import BackendError
from kotae.providers.inference.base import (
    CancelToken,
    Capabilities,
    ChatMessage,
    ChatRequest,
    Finished,
    StreamChunk,
    TextDelta,
)
from kotae.schemas.responses import CreateResponse
from kotae.services.models import ModelRegistry
from kotae.services.responses.replay import replay_events
from kotae.services.responses.service import ResponsesService
from kotae.storage.engine import make_engine, migrate, session_factory
from kotae.storage.orm import Project
from kotae.storage.repositories.responses import ResponseRepository
from tests.helpers import assert_stream_grammar


class ScriptedBackend:
    """Says the given pieces, then finishes; or fails after them."""

    def __init__(self, pieces: list[str], reason: str = "stop", fail: bool = False) -> None:
        self.model_id = "scripted"
        self.context_window = 4096
        self.capabilities = Capabilities(json_schema=False, exact_token_count=True)
        self.pieces = pieces
        self.reason = reason
        self.fail = fail
        self.seen: list[ChatRequest] = []

    async def count_tokens(self, messages: list[ChatMessage], tools: object = None) -> int:
        return sum(len(m.content.split()) + 1 for m in messages)

    def check_capacity(self) -> None:
        return None

    async def stream(self, request: ChatRequest, cancel: CancelToken) -> AsyncIterator[StreamChunk]:
        self.seen.append(request)
        for piece in self.pieces:
            yield TextDelta(piece)
        if self.fail:
            raise BackendError("engine went away")
        yield Finished(self.reason, 7, len(self.pieces), 2)  # type: ignore[arg-type]

    async def close(self) -> None:
        return None


def make_service(
    tmp_path: Path, backend: ScriptedBackend
) -> tuple[ResponsesService, ResponseRepository]:
    settings = Settings(data_dir=tmp_path)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        s.add(Project(id="proj", name="proj", created_at=0))
    repo = ResponseRepository(engine)
    registry = ModelRegistry(settings)
    registry._backends["smollm2-135m-instruct"] = backend  # type: ignore[assignment]
    return ResponsesService(settings, registry, repo, None), repo  # type: ignore[arg-type]


async def collect(agen: AsyncIterator[object]) -> list[object]:
    return [e async for e in agen]


def test_stream_grammar_and_usage(tmp_path: Path) -> None:
    backend = ScriptedBackend(["Hel", "lo", "!"])
    service, _ = make_service(tmp_path, backend)

    async def run() -> list[object]:
        p = await service.prepare("proj", CreateResponse(model="gpt-4o", input="hi", stream=True))
        return await collect(service.stream(p))

    events = assert_stream_grammar(asyncio.run(run()))
    final = events[-1].response
    assert final.output_text == "Hello!"
    assert final.usage.input_tokens == 7 and final.usage.output_tokens == 3
    assert final.usage.input_tokens_details.cached_tokens == 2


def test_empty_answer_still_has_a_message(tmp_path: Path) -> None:
    service, _ = make_service(tmp_path, ScriptedBackend([]))

    async def run() -> list[object]:
        p = await service.prepare("proj", CreateResponse(model="gpt-4o", input="hi", stream=True))
        return await collect(service.stream(p))

    events = assert_stream_grammar(asyncio.run(run()))
    assert events[-1].response.output_text == ""


def test_failure_midstream_ends_with_failed_and_keeps_the_output(tmp_path: Path) -> None:
    service, repo = make_service(tmp_path, ScriptedBackend(["a"], fail=True))

    async def run() -> list[object]:
        p = await service.prepare("proj", CreateResponse(model="gpt-4o", input="hi", stream=True))
        return await collect(service.stream(p))

    events = asyncio.run(run())
    assert events[-1].type == "response.failed"  # type: ignore[attr-defined]
    assert events[-1].response.error.message == "engine went away"  # type: ignore[attr-defined]
    kept = repo.get("proj", events[-1].response.id)  # type: ignore[attr-defined]
    assert kept is not None and kept["status"] == "failed"
    assert kept["error"]["message"] == "engine went away"
    assert kept["output"][0]["content"][0]["text"] == "a"  # the text so far, kept


def test_non_stream_failure_raises(tmp_path: Path) -> None:
    service, _ = make_service(tmp_path, ScriptedBackend(["a"], fail=True))

    async def run() -> None:
        p = await service.prepare("proj", CreateResponse(model="gpt-4o", input="hi"))
        await service.create(p)

    with pytest.raises(BackendError):
        asyncio.run(run())


def test_thread_is_rebuilt_in_order(tmp_path: Path) -> None:
    backend = ScriptedBackend(["answer"])
    service, _ = make_service(tmp_path, backend)

    async def run() -> None:
        r1 = await service.create(
            await service.prepare(
                "proj", CreateResponse(model="gpt-4o", input="one", instructions="sys1")
            )
        )
        r2 = await service.create(
            await service.prepare(
                "proj", CreateResponse(model="gpt-4o", input="two", previous_response_id=r1.id)
            )
        )
        await service.create(
            await service.prepare(
                "proj",
                CreateResponse(
                    model="gpt-4o", input="three", instructions="sys3", previous_response_id=r2.id
                ),
            )
        )

    asyncio.run(run())
    last = backend.seen[-1].messages
    assert [(m.role, m.content) for m in last] == [
        ("system", "sys3"),
        ("user", "one"),
        ("assistant", "answer"),
        ("user", "two"),
        ("assistant", "answer"),
        ("user", "three"),
    ]


def test_replay_matches_the_original(tmp_path: Path) -> None:
    service, _ = make_service(tmp_path, ScriptedBackend(["a", "b"]))

    async def run() -> list[object]:
        p = await service.prepare("proj", CreateResponse(model="gpt-4o", input="hi", stream=True))
        return await collect(service.stream(p))

    original = assert_stream_grammar(asyncio.run(run()))
    replayed = assert_stream_grammar(replay_events(original[-1].response))
    assert replayed[-1].response.output_text == "ab"
    assert replayed[-1].response.output[0].id == original[-1].response.output[0].id


def test_fast_delta_is_the_sdk_event_on_the_wire() -> None:
    from openai.types.responses import ResponseTextDeltaEvent

    from kotae.services.responses.events import OutputTextDelta

    ev = OutputTextDelta(
        item_id="msg_1", output_index=0, content_index=0, delta="日本", sequence_number=5
    )
    parsed = ResponseTextDeltaEvent.model_validate_json(ev.model_dump_json())
    assert parsed.delta == "日本" and parsed.sequence_number == 5 and parsed.logprobs == []
    assert parsed.type == "response.output_text.delta"
