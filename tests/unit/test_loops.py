"""The loop detector: a repeating tail is found, ordinary text is not."""

from __future__ import annotations

from kotae.providers.inference.loops import MIN_SPAN, loop_period


def test_a_repeated_phrase_is_a_loop() -> None:
    answer = list(range(100, 140))
    phrase = [7, 8, 9, 10, 11, 12, 13]
    assert loop_period(answer + phrase * 6) is None  # 42 tokens: not yet
    assert loop_period(answer + phrase * 12) == len(phrase)


def test_one_token_over_and_over() -> None:
    assert loop_period([5] * (MIN_SPAN - 1)) is None
    assert loop_period([1, 2, 3] + [5] * MIN_SPAN) == 1


def test_text_without_a_loop() -> None:
    # A counting answer repeats its shape, never its tokens.
    tokens = [t for i in range(200) for t in (i, 10_000)]
    assert loop_period(tokens) is None
    assert loop_period([]) is None
