"""The one emitter of Responses stream events. It alone assigns `sequence_number` and
`output_index`, and it pairs every `*.added` with its `*.done`: the response's lifecycle and
its message here, tool items in `tool_events.py`, the numbering in `event_base.py`."""

from __future__ import annotations

import time
from typing import Any

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseError,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseOutputTextAnnotationAddedEvent,
    ResponseQueuedEvent,
    ResponseStreamEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response import IncompleteDetails

from kotae import ids
from kotae.providers.inference.base import TokenLogprob
from kotae.services.responses.event_base import (
    ItemStatus,
    OutputTextDelta,
    StreamEvent,
    delta_logprob,
)
from kotae.services.responses.reasoning_events import ReasoningItemEvents
from kotae.services.responses.tool_events import ToolItemEvents

__all__ = ["OutputTextDelta", "ResponseEmitter", "StreamEvent", "delta_logprob"]


class ResponseEmitter(ToolItemEvents, ReasoningItemEvents):
    """Builds the events of one response while keeping `response` (the snapshot) current."""

    def created(self) -> ResponseStreamEvent:
        return ResponseCreatedEvent(
            response=self._snapshot(), sequence_number=self._next(), type="response.created"
        )

    def queued(self) -> ResponseStreamEvent:
        return ResponseQueuedEvent(
            response=self._snapshot(), sequence_number=self._next(), type="response.queued"
        )

    def in_progress(self) -> ResponseStreamEvent:
        self.response.status = "in_progress"
        return ResponseInProgressEvent(
            response=self._snapshot(), sequence_number=self._next(), type="response.in_progress"
        )

    def start_message(self, item_id: str | None = None) -> list[ResponseStreamEvent]:
        assert self._message is None, "a message is already open"
        message = ResponseOutputMessage(
            id=item_id or ids.message_id(),
            content=[],
            role="assistant",
            status="in_progress",
            type="message",
        )
        self._message = message
        self._text = []
        self._annotations = []
        self._logprobs = []
        output_index = len(self.response.output)
        self.response.output.append(message)
        return [
            self._item_added(message, output_index),
            ResponseContentPartAddedEvent(
                content_index=0,
                item_id=message.id,
                output_index=output_index,
                part=ResponseOutputText(annotations=[], text="", type="output_text", logprobs=[]),
                sequence_number=self._next(),
                type="response.content_part.added",
            ),
        ]

    def partial(self) -> Response:
        """The response as it stands, with the open message's text so far (stored while it
        runs, so a retrieve or a crash shows the output up to here)."""
        snapshot = self.response.model_copy(deep=True)
        if self._message is not None:
            message = snapshot.output[-1]
            assert isinstance(message, ResponseOutputMessage)
            message.content = [
                ResponseOutputText(
                    annotations=[], text="".join(self._text), type="output_text", logprobs=[]
                )
            ]
        return snapshot

    def text_delta(self, text: str, logprobs: list[TokenLogprob] | None = None) -> OutputTextDelta:
        message = self._message
        assert message is not None, "no message is open"
        self._text.append(text)
        shown: list[Any] = []
        for token in logprobs or []:
            self._logprobs.append(
                {
                    "token": token.token,
                    "bytes": token.bytes,
                    "logprob": token.logprob,
                    "top_logprobs": [
                        {"token": t, "bytes": b, "logprob": lp} for t, b, lp in token.top
                    ],
                }
            )
            shown.append(delta_logprob(self._logprobs[-1]))
        return OutputTextDelta(
            item_id=message.id,
            output_index=len(self.response.output) - 1,
            content_index=0,
            delta=text,
            sequence_number=self._next(),
            logprobs=shown,
        )

    def finish_message(self, status: ItemStatus) -> list[ResponseStreamEvent]:
        message = self._message
        assert message is not None, "no message is open"
        self._message = None
        text = "".join(self._text)
        output_index = len(self.response.output) - 1
        kept = self._logprobs if self._keep_logprobs else []
        part = ResponseOutputText.model_validate(
            {
                "annotations": self._annotations,
                "text": text,
                "type": "output_text",
                "logprobs": kept,
            }
        )
        message.content = [part]
        message.status = status
        return [
            ResponseTextDoneEvent.model_validate(
                {
                    "content_index": 0,
                    "item_id": message.id,
                    "logprobs": [delta_logprob(t) for t in self._logprobs],
                    "output_index": output_index,
                    "sequence_number": self._next(),
                    "text": text,
                    "type": "response.output_text.done",
                }
            ),
            ResponseContentPartDoneEvent(
                content_index=0,
                item_id=message.id,
                output_index=output_index,
                part=self._copy(part),
                sequence_number=self._next(),
                type="response.content_part.done",
            ),
            self._item_done(message, output_index),
        ]

    def annotate(self, annotations: list[dict[str, Any]]) -> list[ResponseStreamEvent]:
        """Citations on the open message's text, sent before its text is done."""
        message = self._message
        assert message is not None, "no message is open"
        self._annotations.extend(annotations)
        start = len(self._annotations) - len(annotations)
        return [
            ResponseOutputTextAnnotationAddedEvent.model_validate(
                {
                    "annotation": a,
                    "annotation_index": start + i,
                    "content_index": 0,
                    "item_id": message.id,
                    "output_index": len(self.response.output) - 1,
                    "sequence_number": self._next(),
                    "type": "response.output_text.annotation.added",
                }
            )
            for i, a in enumerate(annotations)
        ]

    def open_text(self) -> str:
        return "".join(self._text)

    def completed(self, usage: ResponseUsage) -> ResponseStreamEvent:
        self.response.status = "completed"
        self.response.usage = usage
        self.response.completed_at = time.time()
        return ResponseCompletedEvent(
            response=self._snapshot(), sequence_number=self._next(), type="response.completed"
        )

    def incomplete(self, usage: ResponseUsage, reason: str) -> ResponseStreamEvent:
        self.response.status = "incomplete"
        self.response.usage = usage
        self.response.incomplete_details = IncompleteDetails.model_validate({"reason": reason})
        return ResponseIncompleteEvent(
            response=self._snapshot(), sequence_number=self._next(), type="response.incomplete"
        )

    def failed(self, message: str, code: str = "server_error") -> ResponseStreamEvent:
        self.response.status = "failed"
        self.response.error = ResponseError.model_validate({"code": code, "message": message})
        return ResponseFailedEvent(
            response=self._snapshot(), sequence_number=self._next(), type="response.failed"
        )

    def cancelled(self) -> Response:
        """A cancelled background response ends with no terminal event of its own."""
        self.response.status = "cancelled"
        return self._snapshot()
