"""The events of tool call items: file and web search, image generation, mcp, function and
custom calls; each item added, its own progress events, then done."""

from __future__ import annotations

from typing import Any

from openai.types.responses import (
    ResponseCodeInterpreterCallCodeDeltaEvent,
    ResponseCodeInterpreterCallCodeDoneEvent,
    ResponseCodeInterpreterCallCompletedEvent,
    ResponseCodeInterpreterCallInProgressEvent,
    ResponseCodeInterpreterCallInterpretingEvent,
    ResponseCodeInterpreterToolCall,
    ResponseCustomToolCall,
    ResponseCustomToolCallInputDeltaEvent,
    ResponseCustomToolCallInputDoneEvent,
    ResponseFileSearchCallCompletedEvent,
    ResponseFileSearchCallInProgressEvent,
    ResponseFileSearchCallSearchingEvent,
    ResponseFileSearchToolCall,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseFunctionWebSearch,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    ResponseMcpCallCompletedEvent,
    ResponseMcpCallFailedEvent,
    ResponseMcpCallInProgressEvent,
    ResponseMcpListToolsCompletedEvent,
    ResponseMcpListToolsFailedEvent,
    ResponseMcpListToolsInProgressEvent,
    ResponseStreamEvent,
    ResponseWebSearchCallCompletedEvent,
    ResponseWebSearchCallInProgressEvent,
    ResponseWebSearchCallSearchingEvent,
)
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

from kotae import ids
from kotae.services.responses.event_base import EmitterBase

_EVENTS: dict[str, Any] = {
    "response.mcp_list_tools.in_progress": ResponseMcpListToolsInProgressEvent,
    "response.mcp_list_tools.completed": ResponseMcpListToolsCompletedEvent,
    "response.mcp_list_tools.failed": ResponseMcpListToolsFailedEvent,
    "response.mcp_call_arguments.delta": ResponseMcpCallArgumentsDeltaEvent,
    "response.mcp_call_arguments.done": ResponseMcpCallArgumentsDoneEvent,
    "response.mcp_call.in_progress": ResponseMcpCallInProgressEvent,
    "response.mcp_call.completed": ResponseMcpCallCompletedEvent,
    "response.mcp_call.failed": ResponseMcpCallFailedEvent,
    "response.code_interpreter_call.in_progress": ResponseCodeInterpreterCallInProgressEvent,
    "response.code_interpreter_call.interpreting": ResponseCodeInterpreterCallInterpretingEvent,
    "response.code_interpreter_call.completed": ResponseCodeInterpreterCallCompletedEvent,
    "response.code_interpreter_call_code.delta": ResponseCodeInterpreterCallCodeDeltaEvent,
    "response.code_interpreter_call_code.done": ResponseCodeInterpreterCallCodeDoneEvent,
}


class ToolItemEvents(EmitterBase):
    """The tool items' events, on the numbering of `EmitterBase`."""

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

    def start_code_interpreter(self, container_id: str, code: str) -> list[ResponseStreamEvent]:
        """A code_interpreter_call added, its code (one delta: the model wrote it whole),
        then `interpreting` while it runs."""
        item = ResponseCodeInterpreterToolCall(
            id=ids.new_id("ci"),
            type="code_interpreter_call",
            status="in_progress",
            container_id=container_id,
            code="",
            outputs=None,
        )
        events = self.start_item(item, "response.code_interpreter_call.in_progress")
        item.code = code
        if code:
            events.append(
                self._item_event("response.code_interpreter_call_code.delta", item, delta=code)
            )
        events.append(self._item_event("response.code_interpreter_call_code.done", item, code=code))
        item.status = "interpreting"
        events.append(self._item_event("response.code_interpreter_call.interpreting", item))
        return events

    def finish_code_interpreter(
        self, outputs: list[dict[str, Any]] | None, status: str
    ) -> list[ResponseStreamEvent]:
        item = self.response.output[-1]
        assert isinstance(item, ResponseCodeInterpreterToolCall)
        done = ResponseCodeInterpreterToolCall.model_validate(
            {**item.model_dump(), "status": status, "outputs": outputs}
        )
        return self.finish_item(done, "response.code_interpreter_call.completed")

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
