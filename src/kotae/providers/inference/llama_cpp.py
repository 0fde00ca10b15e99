"""Embedded llama.cpp (llama-cpp-python) on a local GGUF file.

One worker thread owns the model: llama.cpp contexts are not thread-safe, and a FIFO queue
means every request is served in arrival order, so none starves. Tokens go back to the event
loop one by one; a cancelled request stops at the next token."""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import json
import logging
import os
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

from kotae import ids
from kotae.errors import (
    BackendError,
    ContextLengthExceeded,
    InvalidRequest,
    KotaeError,
    queue_full,
)
from kotae.providers.inference import thinking, tool_calls
from kotae.providers.inference.base import (
    CancelToken,
    Capabilities,
    ChatMessage,
    ChatRequest,
    Finished,
    FunctionSpec,
    ReasoningDelta,
    StreamChunk,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    with_system_note,
)
from kotae.providers.inference.loops import loop_period

# For GGUFs without a chat template (e.g. base or test models): ChatML.
log = logging.getLogger("kotae.engine")

FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def visible_tools(request: ChatRequest) -> list[FunctionSpec]:
    """The tools the model is shown: none under tool_choice none, else the allowed ones."""
    if request.tool_mode == "none":
        return []
    if request.allowed_tools is None:
        return request.tools
    return [t for t in request.tools if t.name in request.allowed_tools]


# Private-use characters around a message's index while the template renders.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
_MARK = re.compile(f"{MARK_OPEN}(\\d+){MARK_CLOSE}")


class OutputRouter:
    """Sends generated text on as text, or holds it when it is (or may become) a tool call,
    then sends the parsed calls. Text that looked like a call but does not parse is sent as
    text, never dropped. A call the conversation already holds the result of is not sent:
    `finish` reports it, and the caller has the model answer instead (a small model given a
    tool's result often asks for it again)."""

    def __init__(self, put: Callable[[object], None], request: ChatRequest) -> None:
        self._put = put
        tools = visible_tools(request)
        self._names = {t.name for t in tools}
        self._answered = tool_calls.answered_calls(request.messages) if tools else set()
        self._hold_all = bool(tools) and request.tool_mode == "required"
        self._watch = bool(tools)
        self._held = ""
        self._passing = not self._watch
        # Only a conversation with tool results can have a model copy their wrapper.
        self._wrappers = WrapperFilter(any(m.role == "tool" for m in request.messages))

    def feed(self, text: str) -> None:
        if self._passing:
            self._text(text)
            return
        self._held += text
        if self._hold_all:
            return
        head = self._held.lstrip()
        if head and not (
            head.startswith(tool_calls.OPEN)
            or tool_calls.OPEN.startswith(head)
            or tool_calls.may_be_bare_call(head)
        ):
            self._passing = True
            held, self._held = self._held, ""
            self._text(held)

    def _text(self, text: str) -> None:
        text = self._wrappers.feed(text)
        if text:
            self._put(TextDelta(text))

    def _flush_text(self, text: str) -> None:
        self._text(text)
        tail = self._wrappers.flush()
        if tail:
            self._put(TextDelta(tail))

    def finish(self) -> Literal["text", "calls", "repeated"]:
        """Flushes: whether the output was text, tool calls, or only calls already
        answered (nothing was sent of those)."""
        held, self._held = self._held, ""
        parsed = tool_calls.parse_calls(held) if held else None
        if parsed is None and held:
            bare = tool_calls.bare_calls(held, self._names)
            parsed = ("", bare) if bare else None
        if parsed is None:
            self._flush_text(held)
            return "text"
        before, calls = parsed
        if all(tool_calls.same_call(*c) in self._answered for c in calls):
            return "repeated"
        self._flush_text(before)
        seen = set()
        for name, arguments in calls:
            if (name, arguments) in seen:  # a small model's echo of the same call
                continue
            seen.add((name, arguments))
            self._put(ToolCallDelta(ToolCall(ids.new_id("call"), name, arguments)))
        return "calls"


# How tool results are wrapped in prompts (Qwen's and Hermes' templates, and kotae's own
# for templates without tools): a model may copy the wrapper into its answer.
TOOL_WRAPPERS = ("<tool_response>", "</tool_response>")


class WrapperFilter:
    """Drops tool-result wrapper tags from streamed text, holding back a tail that may be
    the start of one."""

    def __init__(self, active: bool) -> None:
        self._active = active
        self._held = ""
        self._started = False

    def feed(self, text: str) -> str:
        if not self._active:
            return text
        buf = self._held + text
        for tag in TOOL_WRAPPERS:
            buf = buf.replace(tag, "")
        keep = 0
        for tag in TOOL_WRAPPERS:
            for n in range(min(len(tag) - 1, len(buf)), 0, -1):
                if buf.endswith(tag[:n]):
                    keep = max(keep, n)
                    break
        self._held = buf[len(buf) - keep :] if keep else ""
        out = buf[: len(buf) - keep]
        if not self._started:
            out = out.lstrip("\n")  # the line the tag stood on
            self._started = bool(out)
        return out

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def _after(put: Callable[[object], None], first: Finished) -> Callable[[object], None]:
    """`put` for a second generation: its Finished counts the first one's tokens too."""

    def put_after(item: object) -> None:
        put(item.after(first) if isinstance(item, Finished) else item)

    return put_after


class StopMatcher:
    """Cuts text at the first stop string, holding back a tail that may start one."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        buf = self._held + text
        cut = min((i for i in (buf.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return buf[:cut], True
        keep = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(buf)), 0, -1):
                if buf.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class LlamaCppBackend:
    def __init__(
        self,
        model_id: str,
        path: str,
        *,
        context_window: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        max_queued: int = 128,
        lora_path: str | None = None,
        chat_template: str | None = None,
    ) -> None:
        self.model_id = model_id
        self.path = path
        self._chat_template = chat_template  # instead of the GGUF's own
        self.lora_path = lora_path  # a GGUF LoRA adapter applied on the base (fine-tuned)
        self.context_window = context_window
        self.capabilities = Capabilities(json_schema=True, exact_token_count=True)
        self._n_threads = n_threads or os.cpu_count() or 1
        self.n_gpu_layers = n_gpu_layers
        self._llama: Any = None
        self._formatter: Any = None
        self._template_adds_bos = False
        self._native_tools = False
        self._load_lock = threading.Lock()
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        # Tokens decoded over the backend's life (read by tests and metrics).
        self.generated_tokens = 0
        self._max_queued = max_queued
        self._pending = 0  # requests queued or running; only touched on the event loop

    # -- loading -----------------------------------------------------------------------------

    def load(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                if not os.path.exists(self.path):
                    raise BackendError(f"Model file for '{self.model_id}' is missing: {self.path}")
                from llama_cpp import Llama
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                llama = Llama(
                    model_path=self.path,
                    n_ctx=self.context_window,
                    n_threads=self._n_threads,
                    n_gpu_layers=self.n_gpu_layers,
                    verbose=False,
                    lora_path=self.lora_path,
                )
                template = self._chat_template or llama.metadata.get("tokenizer.chat_template")
                eos = (
                    llama._model.token_get_text(llama.token_eos()) if llama.token_eos() >= 0 else ""
                )
                bos = (
                    llama._model.token_get_text(llama.token_bos()) if llama.token_bos() >= 0 else ""
                )
                self._template_adds_bos = template is not None
                # Templates that render `tools` themselves (Qwen, Hermes, Llama 3.1...).
                self._native_tools = template is not None and "tools" in template
                self._formatter = Jinja2ChatFormatter(
                    template=template or FALLBACK_TEMPLATE, eos_token=eos, bos_token=bos
                )
                self._llama = llama
            return self._llama

    def _ensure_worker(self) -> None:
        if self._worker is None:
            with self._load_lock:
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._run, name=f"llama-{self.model_id}", daemon=True
                    )
                    self._worker.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    # -- prompt --------------------------------------------------------------------------------

    def _prompt(
        self, messages: list[ChatMessage], request: ChatRequest | None = None
    ) -> tuple[list[int], list[str], bool]:
        """The prompt's tokens, the template's stop strings, and whether the template opened
        a <think> block (what the model writes first is then thinking)."""
        llama = self.load()
        if request is not None and request.prompt is not None:
            # Legacy completions: the text itself, as plain text (never special tokens).
            raw = request.prompt.encode("utf-8")
            return llama.tokenize(raw, add_bos=True, special=False), [], False
        tools = visible_tools(request) if request else []
        extra: dict[str, Any] = dict(request.template_kwargs) if request else {}
        if tools and self._native_tools:
            extra["tools"] = tool_calls.openai_tools(tools)
        elif tools:
            assert request is not None
            hint = tool_calls.system_prompt(tools, request.tool_mode == "required")
            messages = with_system_note(messages, hint)
        templated = tool_calls.template_messages(messages, self._native_tools)
        # Each message's text goes through the template as a marker, so that only the
        # template's own text is read for special tokens: a user who writes "<|im_start|>"
        # gets those characters, not a new turn.
        texts: list[str] = []
        for message in templated:
            for key in ("content", "reasoning_content"):
                if isinstance(message.get(key), str):
                    texts.append(message[key])
                    message[key] = f"{MARK_OPEN}{len(texts) - 1}{MARK_CLOSE}"
        try:
            formatted = self._formatter(messages=templated, **extra)
        except Exception as exc:  # the template's own raise_exception, e.g. role order
            raise InvalidRequest(f"The model's chat template refused the input: {exc}") from exc
        tokens: list[int] = []
        for i, piece in enumerate(_MARK.split(formatted.prompt)):
            # Even pieces are the template's text, odd ones a message's index.
            special = i % 2 == 0
            text = piece if special else texts[int(piece)]
            if text:
                add_bos = not tokens and not self._template_adds_bos
                tokens += llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
        stops = [s for s in (formatted.stop or []) if isinstance(s, str)]
        if not self._template_adds_bos:
            stops.append("<|im_end|>")
        opened = formatted.prompt.rstrip().endswith(thinking.OPEN)
        return tokens, stops, opened

    @property
    def pending(self) -> int:
        """Requests queued or running on this engine."""
        return self._pending

    def check_capacity(self) -> None:
        if self._pending >= self._max_queued:
            raise queue_full(f"Model '{self.model_id}'", self._pending, self._max_queued)

    async def count_tokens(
        self, messages: list[ChatMessage], tools: list[FunctionSpec] | None = None
    ) -> int:
        if self._llama is None:
            await asyncio.to_thread(self.load)
        request = ChatRequest(messages, 1, 0.0, 1.0, tools=tools or []) if tools else None
        # A long prompt takes seconds to template and tokenize: not on the event loop.
        tokens, _, _ = await asyncio.to_thread(self._prompt, messages, request)
        return len(tokens)

    # -- generation ---------------------------------------------------------------------------

    def _grammar(self, request: ChatRequest) -> Any:
        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        tools = visible_tools(request)
        if tools and request.tool_mode == "required":
            # A required call is decoded under its schema: it always parses and validates.
            try:
                return LlamaGrammar.from_string(
                    tool_calls.call_grammar(tools, request.parallel_tool_calls), verbose=False
                )
            except Exception as exc:
                raise InvalidRequest(
                    f"A function's parameters schema cannot be enforced: {exc}", param="tools"
                ) from exc
        response_format = request.response_format
        if not response_format:
            return None

        if response_format["type"] == "json_schema":
            try:
                return LlamaGrammar.from_json_schema(
                    json.dumps(tool_calls.enforceable(response_format["schema"])), verbose=False
                )
            except Exception as exc:
                raise InvalidRequest(
                    f"Invalid JSON schema for structured output: {exc}",
                    param="text.format.schema",
                ) from exc
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)

    def _generate(
        self, request: ChatRequest, cancel: CancelToken, put: Callable[[object], None]
    ) -> None:
        try:
            import llama_cpp

            llama = self.load()
            tokens, template_stops, opened = self._prompt(request.messages, request)
            n_ctx = llama.n_ctx()
            if len(tokens) >= n_ctx:
                raise ContextLengthExceeded(
                    f"The input is {len(tokens)} tokens; model '{self.model_id}' has a "
                    f"context window of {n_ctx}.",
                    param="input",
                )
            budget = min(request.max_tokens, n_ctx - len(tokens))
            cached = _common_prefix(llama._input_ids[: llama.n_tokens], tokens)
            grammar = self._grammar(request)
            if request.seed is not None:
                llama.set_seed(request.seed)
            vocab = llama._model.vocab
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            stopper = StopMatcher(request.stop + template_stops)
            scored: list[TokenLogprob] = []
            if request.logprobs:
                put = _with_logprobs(put, scored)
            router = OutputRouter(put, request)
            # Thinking is told apart before tool calls are looked for: a call comes after
            # </think>. Legacy completions and grammar-bound output are taken as written.
            splitter = (
                thinking.ThinkSplitter(opened or request.opens_thinking)
                if request.prompt is None and grammar is None
                else None
            )

            def emit(pieces: list[thinking.Piece]) -> None:
                for piece in pieces:
                    if isinstance(piece, ReasoningDelta):
                        put(piece)
                    else:
                        router.feed(piece.text)

            def feed(text: str) -> None:
                emit(splitter.feed(text) if splitter is not None else [TextDelta(text)])

            # Logprobs are the answer's tokens': those read before the output is known to be
            # thinking or answer wait here (scored only when asked), dropped if it was thinking.
            undecided: list[TokenLogprob | None] = []

            produced = 0
            thought = 0  # tokens produced while thinking
            reason: Any = "stop"
            if cancel.cancelled:
                put(Finished("cancelled", len(tokens), 0, cached))
                return
            made: list[int] = []
            guarded = request.loop_guard and grammar is None
            penalty = request.repeat_penalty
            sampled = _Sampled(llama, tokens)
            for token in sampled.tokens(
                temp=request.temperature,
                top_p=request.top_p,
                top_k=40,
                min_p=0.05,
                # JSON under a grammar repeats its quotes and braces by right; logprobs
                # describe the model's own choice, which a penalty would move off the top.
                repeat_penalty=1.0 if grammar is not None or request.logprobs else penalty,
                grammar=grammar,
            ):
                if cancel.cancelled:
                    reason = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                produced += 1
                self.generated_tokens += 1
                score = (
                    token_logprob(llama, token, request.top_logprobs) if request.logprobs else None
                )
                before = splitter.state if splitter is not None else "answer"
                text, hit = stopper.feed(decoder.decode(llama.detokenize([token])))
                pieces: list[thinking.Piece] = []
                if text:
                    pieces = splitter.feed(text) if splitter is not None else [TextDelta(text)]
                after = splitter.state if splitter is not None else "answer"
                if after == "answer" and before != "thinking":
                    if request.logprobs:  # before the text they belong to is put
                        scored.extend(t for t in [*undecided, score] if t is not None)
                    undecided.clear()
                elif after == "start":
                    undecided.append(score)
                else:
                    thought += 1 + len(undecided)
                    undecided.clear()
                emit(pieces)
                if hit:
                    break
                if guarded:
                    made.append(token)
                    period = loop_period(made)
                    if period is not None:
                        log.warning(
                            "%s: stopped a loop (the last %d tokens repeating) after %d tokens",
                            self.model_id,
                            period,
                            produced,
                        )
                        break
                if produced >= budget:
                    reason = "length"
                    break
                over = request.thinking_budget is not None and thought >= request.thinking_budget
                if over and splitter is not None and splitter.state == "thinking":
                    # The thinking's cap: the block is closed for the model, which answers.
                    feed(decoder.decode(b"", final=True) + CLOSE_THINKING)
                    sampled.insert(llama.tokenize(CLOSE_THINKING.encode(), False, True))
            tail = stopper.flush() + decoder.decode(b"", final=True)
            if tail:
                feed(tail)
            if splitter is not None:
                emit(splitter.flush())
            routed = router.finish()
            if routed == "repeated" and reason == "stop":
                log.info("%s: asked again for a result it has: answering", self.model_id)
                answer = dataclasses.replace(request, tool_mode="none")
                first = Finished(reason, len(tokens), produced, cached, thought)
                self._generate(answer, cancel, _after(put, first))
                return
            if routed == "calls" and reason == "stop":
                reason = "tool_calls"
            put(Finished(reason, len(tokens), produced, cached, thought))
        except KotaeError as exc:
            put(exc)
        except Exception as exc:
            put(BackendError(f"llama.cpp failed on model '{self.model_id}': {exc}"))

    async def stream(self, request: ChatRequest, cancel: CancelToken) -> AsyncIterator[StreamChunk]:
        self._ensure_worker()
        loop = asyncio.get_running_loop()
        results: asyncio.Queue[object] = asyncio.Queue()

        def put(item: object) -> None:
            loop.call_soon_threadsafe(results.put_nowait, item)

        self._pending += 1
        self._jobs.put(lambda: self._generate(request, cancel, put))
        try:
            while True:
                item = await results.get()
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, TextDelta | ReasoningDelta | ToolCallDelta | Finished)
                yield item
                if isinstance(item, Finished):
                    return
        finally:
            # The consumer left early (client gone, request cancelled): stop the worker.
            cancel.cancel()
            self._pending -= 1

    async def close(self) -> None:
        if self._worker is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._worker.join, 30)
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()


CLOSE_THINKING = f"\n{thinking.CLOSE}\n\n"


class _Sampled:
    """llama.cpp's token generator over a prompt, into which tokens the model did not choose
    can be put (a thinking block closed at its cap): generation goes on after them, the
    prompt's cache kept."""

    def __init__(self, llama: Any, prompt: list[int]) -> None:
        self._llama = llama
        self._context = list(prompt)
        self._inserted: list[int] = []

    def insert(self, tokens: list[int]) -> None:
        self._inserted = tokens

    def tokens(self, **sampling: Any) -> Iterator[int]:
        while True:
            for token in self._llama.generate(self._context, **sampling):
                self._context.append(token)
                yield token
                if self._inserted:
                    break
            else:
                return
            self._context += self._inserted
            self._inserted = []


def _with_logprobs(
    put: Callable[[object], None], scored: list[TokenLogprob]
) -> Callable[[object], None]:
    """`put` that hands the tokens scored since the last text to the next text delta."""

    def put_scored(item: object) -> None:
        if isinstance(item, TextDelta) and scored:
            item.logprobs = scored[:]
            scored.clear()
        put(item)

    return put_scored


def token_logprob(llama: Any, token: int, top: int) -> TokenLogprob:
    """The log probability of `token` under the logits that chose it (the model's own
    distribution, before temperature and grammar), with the `top` likeliest tokens."""
    import llama_cpp
    import numpy as np

    n_vocab = llama.n_vocab()
    logits = np.ctypeslib.as_array(
        llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1), shape=(n_vocab,)
    ).astype(np.float64)
    shifted = logits - logits.max()
    logprobs = shifted - np.log(np.exp(shifted).sum())

    def piece(t: int) -> tuple[str, list[int]]:
        raw = llama.detokenize([t])
        return raw.decode("utf-8", errors="replace"), list(raw)

    text, raw = piece(token)
    alternatives = []
    if top:
        best = np.argpartition(-logprobs, top)[:top]
        for t in best[np.argsort(-logprobs[best])]:
            alt_text, alt_raw = piece(int(t))
            alternatives.append((alt_text, alt_raw, float(logprobs[t])))
    return TokenLogprob(text, raw, float(logprobs[token]), alternatives)


def _common_prefix(a: Any, b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
