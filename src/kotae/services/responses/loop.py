"""The agent loop: model turns, each seeing the tools it may call; built-in calls run here and
their results feed the next turn; a call of a client's tool ends the response for the client.

Two strategies for how a turn offers the built-in tools:
- native: the engine calls tools itself (vLLM, SGLang, Ollama, llama.cpp server); every tool
  goes to every turn, and the model calls as many as it needs, in parallel when allowed.
- constrained: the engine (or a small embedded model) cannot choose tools well by itself. A
  short grammar-constrained decision turn picks one built-in tool or "answer directly"; the
  results are placed in the system turn; each built-in runs at most once (small models repeat
  themselves); the answer turn then sees only the client's tools.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kotae.providers.inference.base import (
    ChatBackend,
    ChatMessage,
    ChatRequest,
    Finished,
    FunctionSpec,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolMode,
    with_system_note,
)
from kotae.services.responses.builtin import BuiltinTool, Outcome, ToolRun
from kotae.services.responses.events import StreamEvent
from kotae.services.responses.reasoning import ReasoningPlan, TurnThoughts
from kotae.services.responses.tools import ToolSetup

ANSWER_DIRECTLY = FunctionSpec(
    "answer_directly",
    "Answer without the files: only for greetings, small talk or general knowledge.",
    {"type": "object", "properties": {}},
)
DECISION_TOKENS = 96


@dataclass
class LoopEnd:
    """How the loop ended."""

    finished: Finished  # the last model turn's
    # input, output, cached and reasoning tokens before it
    spent: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    cites: list[Callable[[str], list[dict[str, Any]]]] = field(default_factory=list)
    turns: int = 0  # model turns, decisions included
    # The response waits for the client: a call of its tool, or an approval request.
    for_client: bool = False


def plus(spent: list[int], turn: Finished | None) -> list[int]:
    if turn is None:
        return spent
    return [
        spent[0] + turn.input_tokens,
        spent[1] + turn.output_tokens,
        spent[2] + turn.cached_tokens,
        spent[3] + turn.reasoning_tokens,
    ]


class AgentLoop:
    def __init__(
        self,
        backend: ChatBackend,
        base: ChatRequest,
        setup: ToolSetup,
        run: ToolRun,
        *,
        native: bool,
        max_tool_calls: int | None,
        max_turns: int,
        client_call_events: Callable[[ToolCall], Sequence[StreamEvent]],
        reasoning: ReasoningPlan | None = None,
    ) -> None:
        self._reasoning = reasoning or ReasoningPlan()
        self._backend = backend
        self._base = base
        self._setup = setup
        self._run = run
        self._native = native
        self._calls_left = max_tool_calls  # built-in calls; None: no limit
        self._max_turns = max(1, max_turns)
        self._client_call_events = client_call_events
        self.end: LoopEnd | None = None
        self._last: Outcome | None = None  # the Outcome of the built-in call just run

    # -- what a turn may call -------------------------------------------------------------

    def _offered(self, turn: int, ran: set[int]) -> tuple[list[FunctionSpec], ToolMode]:
        """The functions this turn shows the model, and its tool mode."""
        setup = self._setup
        mode: ToolMode = setup.mode if turn == 0 else "auto"
        if turn >= self._max_turns - 1:
            mode = "none"  # the last turn answers
        allowed = setup.allowed(turn)
        tools = [f for f in setup.functions if allowed is None or f.name in allowed]
        if self._calls_left is None or self._calls_left > 0:
            for i, tool in enumerate(setup.builtins):
                if self._native or i not in ran:
                    tools += [f for f in tool.functions() if allowed is None or f.name in allowed]
        if not tools:
            mode = "none"
        return tools, mode

    # -- the loop -------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[StreamEvent]:
        messages = list(self._base.messages)
        spent = [0, 0, 0, 0]
        cites: list[Callable[[str], list[dict[str, Any]]]] = []
        ran: set[int] = set()  # built-ins that ran (the constrained strategy runs each once)
        turn = 0
        for builtin in self._setup.builtins:
            async for event in builtin.open(self._run):
                if not isinstance(event, Outcome):
                    yield event
                    continue
                if event.cite is not None:
                    cites.append(event.cite)
                messages = self._fed(messages, "", [event])
        while True:
            tools, mode = self._offered(turn, ran)
            if not self._native:
                builtins = [t for t in tools if self._setup.builtin(t.name) is not None]
                if builtins and mode != "none":
                    clients = [t for t in tools if self._setup.builtin(t.name) is None]
                    call, decided = await self._decide(
                        messages, builtins, mode == "required" and not clients
                    )
                    spent = plus(spent, decided)
                    turn += 1
                    tool = self._setup.builtin(call.name) if call is not None else None
                    if tool is not None and call is not None:
                        ran.add(self._setup.builtins.index(tool))
                        async for event in self._called(tool, call, cites):
                            yield event
                        outcome = self._outcome()
                        messages = self._fed(messages, "", [outcome])
                        if outcome.ends_response:
                            self.end = LoopEnd(decided, spent, cites, turn, for_client=True)
                            return
                        continue
                    # Answer directly: the answer turn sees the client's tools only; a
                    # required choice holds there when it could not be met by a built-in.
                    tools = clients
                    mode = mode if clients else "none"
            request = dataclasses.replace(
                self._base,
                messages=messages,
                tools=tools,
                tool_mode=mode,
                allowed_tools=None,
            )
            text = ""
            calls: list[ToolCall] = []
            finished: Finished | None = None
            emitter = self._run.emitter
            thoughts = TurnThoughts(emitter, self._backend, self._reasoning, self._run.cancel)
            chunks = self._backend.stream(request, self._run.cancel.child())
            async for chunk in thoughts.through(chunks):
                if not isinstance(chunk, TextDelta | ReasoningDelta | ToolCallDelta | Finished):
                    yield chunk  # the reasoning item's events
                elif isinstance(chunk, TextDelta):
                    if not emitter.message_open:
                        for event in emitter.start_message():
                            yield event
                    text += chunk.text
                    yield emitter.text_delta(chunk.text, chunk.logprobs)
                elif isinstance(chunk, ToolCallDelta):
                    calls.append(chunk.call)
                elif isinstance(chunk, Finished):
                    finished = chunk
            assert finished is not None
            spent = plus(spent, thoughts.summary_cost)
            turn += 1
            if not self._base.parallel_tool_calls:
                calls = calls[:1]
            if not calls or finished.reason == "cancelled" or self._run.cancel.cancelled:
                # The answer: its message stays open for the citations.
                self.end = LoopEnd(finished, spent, cites, turn)
                return
            if emitter.message_open:
                for event in emitter.finish_message("completed"):
                    yield event
            fed: list[Outcome] = []
            for_client = False
            for call in calls:
                tool = self._setup.builtin(call.name)
                if tool is None:
                    for event in self._client_call_events(call):
                        yield event
                    for_client = True
                    continue
                if self._calls_left is not None:
                    if self._calls_left <= 0:
                        continue  # over max_tool_calls: ignored, as OpenAI does
                    self._calls_left -= 1
                async for event in self._called(tool, call, cites):
                    yield event
                outcome = self._outcome()
                for_client = for_client or outcome.ends_response
                fed.append(outcome)
            if for_client:
                self.end = LoopEnd(finished, spent, cites, turn, for_client=True)
                return
            spent = plus(spent, finished)
            messages = self._fed(messages, text, fed, thoughts.reasoning)

    async def _called(
        self,
        tool: BuiltinTool,
        call: ToolCall,
        cites: list[Callable[[str], list[dict[str, Any]]]],
    ) -> AsyncIterator[StreamEvent]:
        """A built-in call's events. Its Outcome (with the call, its citations kept in
        `cites`) is then `_outcome()`."""
        self._last = None
        async for event in tool.run(call, self._run):
            if isinstance(event, Outcome):
                self._last = event
            else:
                yield event
        outcome = self._outcome()
        outcome.call = call
        if outcome.cite is not None:
            cites.append(outcome.cite)

    def _outcome(self) -> Outcome:
        assert self._last is not None, "a built-in tool's run ends with its Outcome"
        return self._last

    def _fed(
        self, messages: list[ChatMessage], text: str, fed: list[Outcome], reasoning: str = ""
    ) -> list[ChatMessage]:
        """The messages with the tools' results for the next turn: as tool turns after the
        assistant's calls (native), or in the system turn (constrained: small models read it
        there best)."""
        if not self._native:
            for outcome in fed:
                messages = with_system_note(messages, outcome.output)
            return messages
        calls = [o.call for o in fed if o.call is not None]
        if not calls and not text:
            return messages
        results = [
            ChatMessage("tool", o.output, tool_call_id=o.call.call_id)
            for o in fed
            if o.call is not None
        ]
        said = ChatMessage("assistant", text, tool_calls=calls, reasoning=reasoning)
        return [*messages, said, *results]

    async def _decision(self, request: ChatRequest) -> tuple[ToolCall | None, Finished]:
        call: ToolCall | None = None
        finished: Finished | None = None
        async for chunk in self._backend.stream(request, self._run.cancel.child()):
            if isinstance(chunk, ToolCallDelta) and call is None:
                call = chunk.call
            elif isinstance(chunk, Finished):
                finished = chunk
        assert finished is not None
        return call, finished

    async def _decide(
        self, messages: list[ChatMessage], builtins: list[FunctionSpec], forced: bool
    ) -> tuple[ToolCall | None, Finished]:
        """The constrained strategy's decision: a required call of one built-in tool or of
        answer_directly, so a small model's choice is always one of them and well-formed."""
        request = dataclasses.replace(
            self._base,
            messages=messages,
            tools=builtins if forced else [*builtins, ANSWER_DIRECTLY],
            tool_mode="required",
            allowed_tools=None,
            parallel_tool_calls=False,
            response_format=None,
            max_tokens=DECISION_TOKENS,
            temperature=0.0,
            stream=False,
        )
        call, finished = await self._decision(request)
        if call is None and finished.reason == "length":
            # Cut off inside the call (a long argument): once more with room to close it.
            request = dataclasses.replace(request, max_tokens=DECISION_TOKENS * 4)
            first = finished
            call, finished = await self._decision(request)
            finished = finished.after(first)
        if call is None and forced:
            # An engine that cannot call tools at all: the forced tool, with arguments valid
            # for its schema made from the user's words (never `{}` where fields are required).
            tool = builtins[0]
            made = schema_arguments(tool.parameters, self._run.question)
            call = ToolCall("call_decided", tool.name, json.dumps(made, ensure_ascii=False))
        return call, finished


def schema_arguments(schema: Any, words: str) -> Any:
    """The smallest value valid for a JSON schema, its required text fields holding `words`:
    the arguments of a call the model was forced to make but could not write."""
    if not isinstance(schema, dict):
        return {}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return schema_arguments(schema[key][0], words)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            name: schema_arguments(properties.get(name, {}), words)
            for name in schema.get("required") or []
        }
    if kind == "string":
        return words or "?"
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    if kind == "array":
        item = schema_arguments(schema.get("items", {}), words)
        return [item] * int(schema.get("minItems", 0))
    return None
