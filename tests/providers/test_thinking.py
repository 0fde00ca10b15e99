"""The <think> splitter: no tag reaches the answer however the text is cut into deltas."""

from __future__ import annotations

import itertools

import pytest

from kotae.providers.inference.base import ReasoningDelta, TextDelta
from kotae.providers.inference.thinking import ThinkSplitter


def split(text: str, cuts: list[int], opened: bool = False) -> tuple[str, str]:
    splitter = ThinkSplitter(opened)
    pieces = []
    bounds = [0, *cuts, len(text)]
    for a, b in itertools.pairwise(bounds):
        pieces += splitter.feed(text[a:b])
    pieces += splitter.flush()
    thought = "".join(p.text for p in pieces if isinstance(p, ReasoningDelta))
    said = "".join(p.text for p in pieces if isinstance(p, TextDelta))
    return thought, said


QWEN3 = "<think>\nThe user greets me.\nI greet back.\n</think>\n\nHello there!"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_a_think_block_is_thinking_however_it_is_cut(size: int) -> None:
    cuts = list(range(size, len(QWEN3), size))
    assert split(QWEN3, cuts) == ("The user greets me.\nI greet back.", "Hello there!")


def test_every_single_cut_point() -> None:
    for a in range(1, len(QWEN3)):
        assert split(QWEN3, [a]) == ("The user greets me.\nI greet back.", "Hello there!"), a


def test_a_template_that_opened_the_block() -> None:
    text = "Paris is the capital.\n</think>\n\nParis."
    for size in (1, 4, 100):
        cuts = list(range(size, len(text), size))
        assert split(text, cuts, opened=True) == ("Paris is the capital.", "Paris.")


def test_plain_answers_pass_untouched() -> None:
    assert split("  Hello <b>world</b>", [1, 3, 9]) == ("", "  Hello <b>world</b>")
    assert split("<thinker> is a word", [3, 6]) == ("", "<thinker> is a word")
    assert split("<thin", [2]) == ("", "<thin")


def test_stray_tags_never_reach_the_answer() -> None:
    text = "Answer: 4</think> and <think>more"
    for a in range(1, len(text)):
        assert "think>" not in split(text, [a])[1]


def test_thinking_cut_off_by_the_output_cap_stays_thinking() -> None:
    assert split("<think>Step one. Step tw", [9]) == ("Step one. Step tw", "")
    assert split("<think>Step </thi", [12]) == ("Step </thi", "")


def test_an_empty_think_block() -> None:
    assert split("<think>\n\n</think>\n\nHi.", [3, 10]) == ("", "Hi.")
