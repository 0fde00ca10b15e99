"""Children that die with the process that started them, even when it is killed with -9."""

from __future__ import annotations

import ctypes
import os
import signal
import threading

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None, check_seconds: float = 0.5) -> None:
    """Ask the kernel for SIGKILL when the parent goes, and also watch the parent id: the
    kernel's signal follows the parent *thread*, which may not be the process's main one.
    `parent` is the pid the child was started by (so a parent gone already is noticed)."""
    parent = parent or os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the watcher below still works
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(check_seconds):
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
