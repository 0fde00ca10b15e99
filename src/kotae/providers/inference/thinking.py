"""A model's thinking told apart from its answer in raw generated text: the `<think>…</think>`
block that Qwen3, DeepSeek-R1 and QwQ write first, for engines that pass it on as text (the
embedded one, and remote servers started without a reasoning parser)."""

from __future__ import annotations

from typing import Literal

from kotae.providers.inference.base import ReasoningDelta, TextDelta

OPEN, CLOSE = "<think>", "</think>"
Piece = ReasoningDelta | TextDelta
State = Literal["start", "thinking", "after", "answer"]


def _partial_tag_at_end(text: str, tag: str) -> int:
    """How many characters at the end of `text` could begin `tag` (held until the next
    delta tells)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkSplitter:
    """Feeds of generated text in, thinking and answer pieces out. A tag split across deltas
    is held until it can be told, so no `<think>` or `</think>` ever reaches the answer; the
    blank lines around the thinking are dropped. Thinking starts with an opening tag at the
    very start, or at once when the chat template opened the block (`opened`)."""

    def __init__(self, opened: bool = False) -> None:
        self.state: State = "thinking" if opened else "start"
        self._held = ""
        self.thought = False  # any thinking text was sent

    @property
    def thinking(self) -> bool:
        return self.state in ("start", "thinking")

    def feed(self, text: str) -> list[Piece]:
        self._held += text
        out: list[Piece] = []
        while True:
            held = self._held
            if self.state == "start":
                head = held.lstrip()
                if head.startswith(OPEN):
                    self.state = "thinking"
                    self._held = head[len(OPEN) :]
                    continue
                if not head or OPEN.startswith(head):
                    return out  # whitespace, or part of the tag so far
                self.state = "answer"
                continue
            if self.state == "thinking":
                end = held.find(CLOSE)
                if end >= 0:
                    self._think(held[:end].rstrip(), out)
                    self._held = held[end + len(CLOSE) :]
                    self.state = "after"
                    continue
                keep = _partial_tag_at_end(held, CLOSE)
                body = held[: len(held) - keep]
                # Trailing whitespace waits: it is dropped if </think> follows it.
                sent = body.rstrip()
                self._think(sent, out)
                self._held = held[len(sent) :]
                return out
            if self.state == "after":
                head = held.lstrip()
                if not head:
                    self._held = ""
                    return out
                self._held = head
                self.state = "answer"
                continue
            # The answer: passed on, but a stray tag (a template that opened the block
            # unannounced, a model that thinks twice) never reaches it.
            for tag in (OPEN, CLOSE):
                held = held.replace(tag, "")
            keep = max(_partial_tag_at_end(held, OPEN), _partial_tag_at_end(held, CLOSE))
            sent = held[: len(held) - keep]
            self._held = held[len(sent) :]
            if sent:
                out.append(TextDelta(sent))
            return out

    def _think(self, text: str, out: list[Piece]) -> None:
        if not self.thought:
            text = text.lstrip()
        if text:
            self.thought = True
            out.append(ReasoningDelta(text))

    def flush(self) -> list[Piece]:
        """What is held at the end: thinking cut off (the output cap) stays thinking; text
        that only looked like the start of a tag is the answer's."""
        held, self._held = self._held, ""
        if self.state == "thinking":
            out: list[Piece] = []
            self._think(held.rstrip(), out)
            return out
        if self.state == "start" and not held.strip():
            return []
        held = held.lstrip() if self.state in ("start", "after") else held
        return [TextDelta(held)] if held else []
