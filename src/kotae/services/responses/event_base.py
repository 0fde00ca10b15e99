"""The numbering under every Responses stream event: `sequence_number`, `output_index`,
the snapshots, and each item's `*.added` paired with its `*.done`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from openai.types.responses import (
    Response,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseStreamEvent,
)
from pydantic import BaseModel

ItemStatus = Literal["completed", "incomplete"]
_M = TypeVar("_M", bound=BaseModel)


@dataclass(slots=True)
class OutputTextDelta:
    """`response.output_text.delta`, made once a token. Field for field the SDK's
    ResponseTextDeltaEvent, but a plain object: openai's model construction costs ~0.13 ms,
    more than the token itself."""

    item_id: str
    output_index: int
    content_index: int
    delta: str
    sequence_number: int
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    logprobs: list[Any] = field(default_factory=list)

    def model_dump_json(self, **_: Any) -> str:
        return json.dumps(
            {
                "type": self.type,
                "item_id": self.item_id,
                "output_index": self.output_index,
                "content_index": self.content_index,
                "delta": self.delta,
                "logprobs": self.logprobs,
                "sequence_number": self.sequence_number,
            },
            ensure_ascii=False,
        )


StreamEvent = ResponseStreamEvent | OutputTextDelta


def delta_logprob(token: dict[str, Any]) -> dict[str, Any]:
    """A token's logprob as the delta events carry it (no bytes)."""
    return {
        "token": token["token"],
        "logprob": token["logprob"],
        "top_logprobs": [
            {"token": t["token"], "logprob": t["logprob"]} for t in token["top_logprobs"]
        ],
    }


class EmitterBase:
    """Numbers the events of one response while keeping `response` (the snapshot) current."""

    def __init__(
        self, response: Response, *, snapshots: bool = True, keep_logprobs: bool = False
    ) -> None:
        self.response = response
        # Token logprobs go on the finished output_text part only when `include` asks.
        self._keep_logprobs = keep_logprobs
        self._logprobs: list[dict[str, Any]] = []
        # A drained (non-streamed) response reads only the last event: no copies needed.
        self._snapshots = snapshots
        self._sequence = 0
        self._message: ResponseOutputMessage | None = None
        self._text: list[str] = []
        self._annotations: list[dict[str, Any]] = []

    @property
    def last_sequence(self) -> int:
        """The number of the last event made (-1 before the first)."""
        return self._sequence - 1

    def _next(self) -> int:
        n = self._sequence
        self._sequence += 1
        return n

    def _snapshot(self) -> Response:
        return self._copy(self.response)

    def _copy(self, model: _M) -> _M:
        return model.model_copy(deep=True) if self._snapshots else model

    def _item_added(self, item: Any, output_index: int) -> ResponseOutputItemAddedEvent:
        return ResponseOutputItemAddedEvent(
            item=self._copy(item),
            output_index=output_index,
            sequence_number=self._next(),
            type="response.output_item.added",
        )

    def _item_done(self, item: Any, output_index: int) -> ResponseOutputItemDoneEvent:
        return ResponseOutputItemDoneEvent(
            item=self._copy(item),
            output_index=output_index,
            sequence_number=self._next(),
            type="response.output_item.done",
        )

    @property
    def message_open(self) -> bool:
        return self._message is not None

    def whole_item(self, item: Any) -> list[ResponseStreamEvent]:
        """An output item that arrives complete: added (in progress), then done."""
        assert self._message is None, "close the message first"
        output_index = len(self.response.output)
        has_status = "status" in type(item).model_fields
        pending = item.model_copy(update={"status": "in_progress"}) if has_status else item
        self.response.output.append(item)
        return [
            ResponseOutputItemAddedEvent.model_construct(
                item=pending,
                output_index=output_index,
                sequence_number=self._next(),
                type="response.output_item.added",
            ),
            ResponseOutputItemDoneEvent.model_construct(
                item=self._copy(item),
                output_index=output_index,
                sequence_number=self._next(),
                type="response.output_item.done",
            ),
        ]
