"""The sandbox interface: start a container's Python process, run code in it, stop it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """What one container may use."""

    memory_bytes: int  # address space of its processes
    cpu_seconds: int  # CPU time per call
    wall_seconds: float  # wall-clock time per call
    processes: int  # processes and threads at once
    disk_bytes: int  # /mnt/data and /tmp together; also the largest file
    open_files: int = 256


@dataclass
class Execution:
    """What a call printed, the error it raised, and the figures it left open (PNG)."""

    logs: str
    error: str | None = None
    images: list[bytes] | None = None
    # The container's process did not survive the call (a timeout, a limit, a crash): its
    # variables are gone, its files stay.
    ended: bool = False


class SandboxError(Exception):
    """The sandbox could not start or answer."""


class Session(ABC):
    """One container's live Python process."""

    @property
    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    async def run(self, code: str) -> Execution:
        """Runs `code` in the process's namespace, within the limits. A call that breaks a
        limit ends with its error in `logs` and the process gone (`ended`)."""

    @abstractmethod
    async def close(self) -> None:
        """Kills the process and everything it started."""


class Sandbox(ABC):
    name: str

    @abstractmethod
    def missing(self) -> str | None:
        """What this machine lacks to run the sandbox (what to install), or None."""

    def adopt(self, root: Path, key: str) -> None:
        """Makes files the server wrote under `root` the container's own."""
        return None

    @abstractmethod
    async def start(self, root: Path, key: str, limits: Limits) -> Session:
        """A new process for the container whose files are under `root`/data (its
        /mnt/data); `key` tells containers apart (each gets its own user id where it can)."""
