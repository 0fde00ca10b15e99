"""A small model's loop (the same few words again and again until the output cap) seen in
the tokens it has made, so the engine can stop it instead of paying for the rest."""

from __future__ import annotations

from collections.abc import Sequence

# A loop is the last `period` tokens repeated MIN_REPEATS times or more, over at least
# MIN_SPAN tokens: well past anything a real answer repeats (a table rule, a refrain).
MIN_SPAN = 80
MIN_REPEATS = 3
MAX_PERIOD = 100


def loop_period(tokens: Sequence[int]) -> int | None:
    """The period of a loop at the end of `tokens`, or None. Cheap per token: a period that
    does not repeat fails on its first comparison."""
    n = len(tokens)
    for period in range(1, min(MAX_PERIOD, n // MIN_REPEATS) + 1):
        span = max(period * MIN_REPEATS, -(-MIN_SPAN // period) * period)
        if span > n:
            continue
        start = n - span
        if all(tokens[i] == tokens[i - period] for i in range(n - 1, start + period - 1, -1)):
            return period
    return None
