"""Embedded llama.cpp (llama-cpp-python) on a local GGUF file.

One worker thread owns the model: llama.cpp contexts are not thread-safe, and a FIFO queue
means every request is served in arrival order, so none starves. Tokens go back to the event
loop one by one; a cancelled request stops at the next token."""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from kotae.errors import (
    BackendError,
    ContextLengthExceeded,
    InvalidRequest,
    KotaeError,
    RateLimited,
)
from kotae.providers.inference.base import (
    CancelToken,
    Capabilities,
    ChatMessage,
    ChatRequest,
    Finished,
    StreamChunk,
    TextDelta,
)

# For GGUFs without a chat template (e.g. base or test models): ChatML.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


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
        max_queued: int = 128,
    ) -> None:
        self.model_id = model_id
        self.path = path
        self.context_window = context_window
        self.capabilities = Capabilities(json_schema=True, exact_token_count=True)
        self._n_threads = n_threads or os.cpu_count() or 1
        self._llama: Any = None
        self._formatter: Any = None
        self._template_adds_bos = False
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
                    verbose=False,
                )
                template = llama.metadata.get("tokenizer.chat_template")
                eos = (
                    llama._model.token_get_text(llama.token_eos()) if llama.token_eos() >= 0 else ""
                )
                bos = (
                    llama._model.token_get_text(llama.token_bos()) if llama.token_bos() >= 0 else ""
                )
                self._template_adds_bos = template is not None
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

    def _prompt(self, messages: list[ChatMessage]) -> tuple[list[int], list[str]]:
        llama = self.load()
        try:
            formatted = self._formatter(
                messages=[{"role": m.role, "content": m.content} for m in messages]
            )
        except Exception as exc:  # the template's own raise_exception, e.g. role order
            raise InvalidRequest(f"The model's chat template refused the input: {exc}") from exc
        tokens: list[int] = llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not self._template_adds_bos, special=True
        )
        stops = [s for s in (formatted.stop or []) if isinstance(s, str)]
        if not self._template_adds_bos:
            stops.append("<|im_end|>")
        return tokens, stops

    def check_capacity(self) -> None:
        if self._pending >= self._max_queued:
            raise RateLimited(
                f"Model '{self.model_id}' has {self._pending} requests in its queue; "
                "retry shortly.",
                code="rate_limit_exceeded",
            )

    async def count_tokens(self, messages: list[ChatMessage]) -> int:
        if self._llama is None:
            await asyncio.to_thread(self.load)
        return len(self._prompt(messages)[0])

    # -- generation ---------------------------------------------------------------------------

    def _grammar(self, response_format: dict[str, Any] | None) -> Any:
        if not response_format:
            return None
        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        if response_format["type"] == "json_schema":
            try:
                return LlamaGrammar.from_json_schema(
                    json.dumps(response_format["schema"]), verbose=False
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
            tokens, template_stops = self._prompt(request.messages)
            n_ctx = llama.n_ctx()
            if len(tokens) >= n_ctx:
                raise ContextLengthExceeded(
                    f"The input is {len(tokens)} tokens; model '{self.model_id}' has a "
                    f"context window of {n_ctx}.",
                    param="input",
                )
            budget = min(request.max_tokens, n_ctx - len(tokens))
            cached = _common_prefix(llama._input_ids[: llama.n_tokens], tokens)
            grammar = self._grammar(request.response_format)
            if request.seed is not None:
                llama.set_seed(request.seed)
            vocab = llama._model.vocab
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            stopper = StopMatcher(request.stop + template_stops)
            produced = 0
            reason: Any = "stop"
            if cancel.cancelled:
                put(Finished("cancelled", len(tokens), 0, cached))
                return
            for token in llama.generate(
                tokens,
                temp=request.temperature,
                top_p=request.top_p,
                top_k=40,
                min_p=0.05,
                repeat_penalty=1.0,
                grammar=grammar,
            ):
                if cancel.cancelled:
                    reason = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                produced += 1
                self.generated_tokens += 1
                text, hit = stopper.feed(decoder.decode(llama.detokenize([token])))
                if text:
                    put(TextDelta(text))
                if hit:
                    break
                if produced >= budget:
                    reason = "length"
                    break
            tail = stopper.flush() + decoder.decode(b"", final=True)
            if tail:
                put(TextDelta(tail))
            put(Finished(reason, len(tokens), produced, cached))
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
                assert isinstance(item, TextDelta | Finished)
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


def _common_prefix(a: Any, b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
