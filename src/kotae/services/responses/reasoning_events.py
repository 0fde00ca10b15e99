"""The events of a reasoning item, exactly the spec's: the item added, its `reasoning_text`
part (added, deltas, done), its summary parts when asked (added, text deltas, done), then
the item done, before the message it precedes."""

from __future__ import annotations

from openai.types.responses import (
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseReasoningItem,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseStreamEvent,
)
from openai.types.responses.response_reasoning_item import Content, Summary

from kotae import ids
from kotae.services.responses.event_base import EmitterBase, ItemStatus


class ReasoningItemEvents(EmitterBase):
    _reasoning: ResponseReasoningItem | None = None
    _thought: list[str]

    @property
    def reasoning_open(self) -> bool:
        return self._reasoning is not None

    def _open_reasoning(self) -> tuple[ResponseReasoningItem, int]:
        item = self._reasoning
        assert item is not None, "no reasoning item is open"
        return item, self.response.output.index(item)

    def start_reasoning(self, item_id: str | None = None) -> list[ResponseStreamEvent]:
        assert self._message is None and self._reasoning is None, "an item is open"
        item = ResponseReasoningItem(
            id=item_id or ids.new_id("rs"),
            type="reasoning",
            summary=[],
            content=[],
            status="in_progress",
        )
        self._reasoning = item
        self._thought = []
        output_index = len(self.response.output)
        self.response.output.append(item)
        return [
            self._item_added(item, output_index),
            ResponseContentPartAddedEvent.model_validate(
                {
                    "content_index": 0,
                    "item_id": item.id,
                    "output_index": output_index,
                    "part": {"type": "reasoning_text", "text": ""},
                    "sequence_number": self._next(),
                    "type": "response.content_part.added",
                }
            ),
        ]

    def reasoning_delta(self, text: str) -> ResponseStreamEvent:
        item, output_index = self._open_reasoning()
        self._thought.append(text)
        # Made once a token: constructed, not validated (the fields are ours).
        return ResponseReasoningTextDeltaEvent.model_construct(
            content_index=0,
            delta=text,
            item_id=item.id,
            output_index=output_index,
            sequence_number=self._next(),
            type="response.reasoning_text.delta",
        )

    def reasoning_text(self) -> str:
        return "".join(self._thought) if self._reasoning is not None else ""

    def finish_reasoning_text(self) -> list[ResponseStreamEvent]:
        item, output_index = self._open_reasoning()
        text = "".join(self._thought)
        item.content = [Content(type="reasoning_text", text=text)]
        return [
            ResponseReasoningTextDoneEvent(
                content_index=0,
                item_id=item.id,
                output_index=output_index,
                sequence_number=self._next(),
                text=text,
                type="response.reasoning_text.done",
            ),
            ResponseContentPartDoneEvent.model_validate(
                {
                    "content_index": 0,
                    "item_id": item.id,
                    "output_index": output_index,
                    "part": {"type": "reasoning_text", "text": text},
                    "sequence_number": self._next(),
                    "type": "response.content_part.done",
                }
            ),
        ]

    def start_summary(self) -> ResponseStreamEvent:
        item, output_index = self._open_reasoning()
        item.summary.append(Summary(type="summary_text", text=""))
        return ResponseReasoningSummaryPartAddedEvent.model_validate(
            {
                "item_id": item.id,
                "output_index": output_index,
                "part": {"type": "summary_text", "text": ""},
                "sequence_number": self._next(),
                "summary_index": len(item.summary) - 1,
                "type": "response.reasoning_summary_part.added",
            }
        )

    def summary_delta(self, text: str) -> ResponseStreamEvent:
        item, output_index = self._open_reasoning()
        item.summary[-1].text += text
        return ResponseReasoningSummaryTextDeltaEvent.model_construct(
            delta=text,
            item_id=item.id,
            output_index=output_index,
            sequence_number=self._next(),
            summary_index=len(item.summary) - 1,
            type="response.reasoning_summary_text.delta",
        )

    def finish_summary(self) -> list[ResponseStreamEvent]:
        item, output_index = self._open_reasoning()
        index = len(item.summary) - 1
        text = item.summary[index].text
        return [
            ResponseReasoningSummaryTextDoneEvent(
                item_id=item.id,
                output_index=output_index,
                sequence_number=self._next(),
                summary_index=index,
                text=text,
                type="response.reasoning_summary_text.done",
            ),
            ResponseReasoningSummaryPartDoneEvent.model_validate(
                {
                    "item_id": item.id,
                    "output_index": output_index,
                    "part": {"type": "summary_text", "text": text},
                    "sequence_number": self._next(),
                    "summary_index": index,
                    "type": "response.reasoning_summary_part.done",
                }
            ),
        ]

    def finish_reasoning(
        self, encrypted: str | None = None, status: ItemStatus = "completed"
    ) -> ResponseStreamEvent:
        item, output_index = self._open_reasoning()
        self._reasoning = None
        item.status = status
        if encrypted is not None:
            item.encrypted_content = encrypted
        return self._item_done(item, output_index)
