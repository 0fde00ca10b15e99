"""Test-only fault injection: with KOTAE_TEST_FAULT=<point>, the process kills itself (SIGKILL)
when it reaches that named point, so crash tests land exactly there instead of sleeping and
hoping. Unset (always, outside tests), a point costs one dictionary lookup."""

from __future__ import annotations

import os
import signal

ENV = "KOTAE_TEST_FAULT"


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
