"""The one emitter of Responses stream events. It alone assigns `sequence_number` and
`output_index`, and it pairs every `*.added` with its `*.done`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseCustomToolCall,
    ResponseCustomToolCallInputDeltaEvent,
    ResponseCustomToolCallInputDoneEvent,
    ResponseError,
    ResponseFailedEvent,
    ResponseFileSearchCallCompletedEvent,
    ResponseFileSearchCallInProgressEvent,
    ResponseFileSearchCallSearchingEvent,
    ResponseFileSearchToolCall,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseFunctionWebSearch,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    ResponseMcpCallCompletedEvent,
    ResponseMcpCallFailedEvent,
    ResponseMcpCallInProgressEvent,
    ResponseMcpListToolsCompletedEvent,
    ResponseMcpListToolsFailedEvent,
    ResponseMcpListToolsInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseOutputTextAnnotationAddedEvent,
    ResponseQueuedEvent,
    ResponseStreamEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
    ResponseWebSearchCallCompletedEvent,
    ResponseWebSearchCallInProgressEvent,
    ResponseWebSearchCallSearchingEvent,
)
from openai.types.responses.response import IncompleteDetails
from openai.types.responses.response_file_search_tool_call import Result as FileSearchResult
from openai.types.responses.response_image_gen_call_completed_event import (
    ResponseImageGenCallCompletedEvent,
)
from openai.types.responses.response_image_gen_call_generating_event import (
    ResponseImageGenCallGeneratingEvent,
)
from openai.types.responses.response_image_gen_call_in_progress_event import (
    ResponseImageGenCallInProgressEvent,
)
from openai.types.responses.response_image_gen_call_partial_image_event import (
    ResponseImageGenCallPartialImageEvent,
)
from openai.types.responses.response_output_item import ImageGenerationCall
from pydantic import BaseModel

from kotae import ids
from kotae.providers.inference.base import TokenLogprob

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


_EVENTS: dict[str, Any] = {
    "response.mcp_list_tools.in_progress": ResponseMcpListToolsInProgressEvent,
    "response.mcp_list_tools.completed": ResponseMcpListToolsCompletedEvent,
    "response.mcp_list_tools.failed": ResponseMcpListToolsFailedEvent,
    "response.mcp_call_arguments.delta": ResponseMcpCallArgumentsDeltaEvent,
    "response.mcp_call_arguments.done": ResponseMcpCallArgumentsDoneEvent,
    "response.mcp_call.in_progress": ResponseMcpCallInProgressEvent,
    "response.mcp_call.completed": ResponseMcpCallCompletedEvent,
    "response.mcp_call.failed": ResponseMcpCallFailedEvent,
}


class ResponseEmitter:
    """Builds the events of one response while keeping `response` (the snapshot) current."""

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

    def _start_search(
        self, item: ResponseFileSearchToolCall | ResponseFunctionWebSearch, kind: str
    ) -> list[ResponseStreamEvent]:
        """A search item added, then its `in_progress` and `searching` events."""
        assert self._message is None, "close the message first"
        output_index = len(self.response.output)
        self.response.output.append(item)
        added = self._item_added(item, output_index)
        item.status = "searching"
        fields = {"item_id": item.id, "output_index": output_index}
        if kind == "file_search_call":
            return [
                added,
                ResponseFileSearchCallInProgressEvent.model_validate(
                    {
                        **fields,
                        "sequence_number": self._next(),
                        "type": f"response.{kind}.in_progress",
                    }
                ),
                ResponseFileSearchCallSearchingEvent.model_validate(
                    {
                        **fields,
                        "sequence_number": self._next(),
                        "type": f"response.{kind}.searching",
                    }
                ),
            ]
        return [
            added,
            ResponseWebSearchCallInProgressEvent.model_validate(
                {**fields, "sequence_number": self._next(), "type": f"response.{kind}.in_progress"}
            ),
            ResponseWebSearchCallSearchingEvent.model_validate(
                {**fields, "sequence_number": self._next(), "type": f"response.{kind}.searching"}
            ),
        ]

    def _finish_search(
        self, item: ResponseFileSearchToolCall | ResponseFunctionWebSearch
    ) -> list[ResponseStreamEvent]:
        """The last output item, replaced by `item` (completed): its events."""
        output_index = len(self.response.output) - 1
        self.response.output[output_index] = item
        completed = (
            ResponseFileSearchCallCompletedEvent
            if item.type == "file_search_call"
            else ResponseWebSearchCallCompletedEvent
        )
        return [
            completed.model_validate(
                {
                    "item_id": item.id,
                    "output_index": output_index,
                    "sequence_number": self._next(),
                    "type": f"response.{item.type}.completed",
                }
            ),
            self._item_done(item, output_index),
        ]

    def start_file_search(
        self, queries: list[str], item_id: str | None = None
    ) -> list[ResponseStreamEvent]:
        item = ResponseFileSearchToolCall(
            id=item_id or ids.new_id("fs"),
            queries=queries,
            status="in_progress",
            type="file_search_call",
            results=None,
        )
        return self._start_search(item, "file_search_call")

    def finish_file_search(self, results: list[dict[str, Any]] | None) -> list[ResponseStreamEvent]:
        item = self.response.output[-1]
        assert isinstance(item, ResponseFileSearchToolCall)
        item.status = "completed"
        item.results = (
            [FileSearchResult.model_validate(r) for r in results] if results is not None else None
        )
        return self._finish_search(item)

    def start_web_search(self, query: str, item_id: str | None = None) -> list[ResponseStreamEvent]:
        item = ResponseFunctionWebSearch.model_validate(
            {
                "id": item_id or ids.new_id("ws"),
                "type": "web_search_call",
                "status": "in_progress",
                "action": {"type": "search", "query": query},
            }
        )
        return self._start_search(item, "web_search_call")

    def finish_web_search(
        self, sources: list[str] | None, status: str = "completed"
    ) -> list[ResponseStreamEvent]:
        item = self.response.output[-1]
        assert isinstance(item, ResponseFunctionWebSearch)
        query = getattr(item.action, "query", None)
        action: dict[str, Any] = {"type": "search", "query": query, "queries": [query]}
        if sources is not None:
            action["sources"] = [{"type": "url", "url": u} for u in sources]
        updated = ResponseFunctionWebSearch.model_validate(
            {"id": item.id, "type": "web_search_call", "status": status, "action": action}
        )
        return self._finish_search(updated)

    def start_image_generation(self) -> list[ResponseStreamEvent]:
        """The image_generation_call item added, then `in_progress` and `generating`."""
        assert self._message is None, "close the message first"
        output_index = len(self.response.output)
        item = ImageGenerationCall(
            id=ids.new_id("ig"), type="image_generation_call", status="in_progress", result=None
        )
        self.response.output.append(item)
        added = self._item_added(item, output_index)
        fields = {"item_id": item.id, "output_index": output_index}
        in_progress = ResponseImageGenCallInProgressEvent(
            **fields,
            sequence_number=self._next(),
            type="response.image_generation_call.in_progress",
        )
        item.status = "generating"
        generating = ResponseImageGenCallGeneratingEvent(
            **fields, sequence_number=self._next(), type="response.image_generation_call.generating"
        )
        return [added, in_progress, generating]

    def partial_image(self, index: int, b64: str, options: dict[str, Any]) -> ResponseStreamEvent:
        item = self.response.output[-1]
        assert isinstance(item, ImageGenerationCall)
        return ResponseImageGenCallPartialImageEvent(
            item_id=item.id,
            output_index=len(self.response.output) - 1,
            partial_image_b64=b64,
            partial_image_index=index,
            sequence_number=self._next(),
            type="response.image_generation_call.partial_image",
            **options,
        )

    def finish_image_generation(
        self, result: str | None, revised_prompt: str, options: dict[str, Any]
    ) -> list[ResponseStreamEvent]:
        output_index = len(self.response.output) - 1
        item = self.response.output[output_index]
        assert isinstance(item, ImageGenerationCall)
        done = ImageGenerationCall.model_validate(
            {
                "id": item.id,
                "type": "image_generation_call",
                "status": "completed" if result is not None else "failed",
                "result": result,
                "revised_prompt": revised_prompt,
                **options,
            }
        )
        self.response.output[output_index] = done
        return [
            ResponseImageGenCallCompletedEvent(
                item_id=done.id,
                output_index=output_index,
                sequence_number=self._next(),
                type="response.image_generation_call.completed",
            ),
            self._item_done(done, output_index),
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

    def _item_event(self, kind: str, item: Any, **fields: Any) -> ResponseStreamEvent:
        event: ResponseStreamEvent = _EVENTS[kind](
            item_id=item.id,
            output_index=len(self.response.output) - 1,
            sequence_number=self._next(),
            type=kind,
            **fields,
        )
        return event

    def start_item(self, item: Any, in_progress: str) -> list[ResponseStreamEvent]:
        """A tool's item added, then its `in_progress` event (e.g. mcp_list_tools)."""
        assert self._message is None, "close the message first"
        self.response.output.append(item)
        added = self._item_added(item, len(self.response.output) - 1)
        return [added, self._item_event(in_progress, item)]

    def finish_item(self, item: Any, completed: str) -> list[ResponseStreamEvent]:
        """The last item, replaced by `item` (finished): its `completed` (or `failed`) event,
        then done."""
        output_index = len(self.response.output) - 1
        self.response.output[output_index] = item
        return [self._item_event(completed, item), self._item_done(item, output_index)]

    def start_mcp_call(self, item: Any, arguments: str) -> list[ResponseStreamEvent]:
        """An mcp_call added, its arguments (one delta), then `in_progress` while it runs."""
        assert self._message is None, "close the message first"
        self.response.output.append(item)
        added = self._item_added(item, len(self.response.output) - 1)
        item.arguments = arguments
        return [
            added,
            self._item_event("response.mcp_call_arguments.delta", item, delta=arguments),
            self._item_event("response.mcp_call_arguments.done", item, arguments=arguments),
            self._item_event("response.mcp_call.in_progress", item),
        ]

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

    def custom_tool_call(
        self, call_id: str, name: str, text: str, item_id: str | None = None
    ) -> list[ResponseStreamEvent]:
        """A whole custom tool call: added, its input (one delta), done."""
        assert self._message is None, "close the message first"
        item = ResponseCustomToolCall(
            id=item_id or ids.new_id("ctc"),
            call_id=call_id,
            name=name,
            input="",
            type="custom_tool_call",
        )
        output_index = len(self.response.output)
        self.response.output.append(item)
        added = self._item_added(item, output_index)
        item.input = text
        assert item.id is not None
        return [
            added,
            ResponseCustomToolCallInputDeltaEvent(
                delta=text,
                item_id=item.id,
                output_index=output_index,
                sequence_number=self._next(),
                type="response.custom_tool_call_input.delta",
            ),
            ResponseCustomToolCallInputDoneEvent(
                input=text,
                item_id=item.id,
                output_index=output_index,
                sequence_number=self._next(),
                type="response.custom_tool_call_input.done",
            ),
            self._item_done(item, output_index),
        ]

    def function_call(
        self,
        call_id: str,
        name: str,
        arguments: str,
        item_id: str | None = None,
        namespace: str | None = None,
    ) -> list[ResponseStreamEvent]:
        """A whole function call: added, its arguments (one delta), done."""
        assert self._message is None, "close the message first"
        item = ResponseFunctionToolCall(
            id=item_id or ids.new_id("fc"),
            call_id=call_id,
            name=name,
            arguments="",
            type="function_call",
            status="in_progress",
            # Set only when there is one: the wire has a namespace string or no key at all.
            **({"namespace": namespace} if namespace else {}),
        )
        output_index = len(self.response.output)
        self.response.output.append(item)
        added = self._item_added(item, output_index)
        item.arguments = arguments
        item.status = "completed"
        assert item.id is not None
        return [
            added,
            ResponseFunctionCallArgumentsDeltaEvent(
                delta=arguments,
                item_id=item.id,
                output_index=output_index,
                sequence_number=self._next(),
                type="response.function_call_arguments.delta",
            ),
            ResponseFunctionCallArgumentsDoneEvent(
                arguments=arguments,
                item_id=item.id,
                output_index=output_index,
                sequence_number=self._next(),
                type="response.function_call_arguments.done",
            ),
            self._item_done(item, output_index),
        ]

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
