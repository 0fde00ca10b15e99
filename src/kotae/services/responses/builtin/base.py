"""What every built-in tool is to the agent loop: how the model sees it, how a call of it runs
(its items and events), and what the next model turn learns from it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from kotae.providers.inference.base import CancelToken, FunctionSpec, ToolCall
from kotae.services.responses.events import ResponseEmitter, StreamEvent

if TYPE_CHECKING:
    from kotae.config import Settings
    from kotae.net.fetch import Fetcher
    from kotae.providers.web_search.base import WebSearchProvider
    from kotae.services.containers.service import ContainersService
    from kotae.services.images import ImagesService
    from kotae.services.vector_stores.service import VectorStoresService


@dataclass
class ToolDeps:
    """The server's services the built-in tools run on."""

    settings: Settings
    vector_stores: VectorStoresService | None = None
    web: WebSearchProvider | None = None
    fetcher: Fetcher | None = None
    images: ImagesService | None = None
    containers: ContainersService | None = None


@dataclass
class ToolRun:
    """One response's view for its tool calls."""

    emitter: ResponseEmitter
    project_id: str
    include: list[str]
    cancel: CancelToken
    deps: ToolDeps
    # The user's own words. Under the constrained strategy a small model writes the call's
    # arguments, and they often miss the point: the tools lean on these words then.
    question: str = ""
    constrained: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # the thread before this turn
    new_items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    """What a call left for the next model turn."""

    output: str  # the tool's result as the model reads it
    # Annotations for the answer's text (citations of what the tool found).
    cite: Callable[[str], list[dict[str, Any]]] | None = None
    # The response ends here and waits for the client (an approval request).
    ends_response: bool = False
    # The call it answers, when the loop did not see the model make it (a call the client
    # approved after the response that asked).
    call: ToolCall | None = None


class BuiltinTool(ABC):
    """A server-side tool: one module each, listed in `builtin.REGISTRY`."""

    kind: ClassVar[str]  # the item family, e.g. "file_search"
    # Credentials the request carries for the tool (an MCP server's headers): used for this
    # run only, never echoed, stored, queued or logged.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, raw: dict[str, Any], index: int) -> None:
        """Checks the tool's options (400s name `tools[index]`)."""
        self.raw = raw  # as the request gave it: the response echoes it
        self.index = index

    def echo(self) -> dict[str, Any]:
        """The tool as the response shows (and stores) it: without its credentials."""
        return {k: v for k, v in self.raw.items() if k not in self.secret_fields}

    def holds_secrets(self) -> bool:
        return any(self.raw.get(name) for name in self.secret_fields)

    @abstractmethod
    def functions(self) -> list[FunctionSpec]:
        """The functions the model calls this tool through."""

    def named_by(self, choice: dict[str, Any]) -> bool:
        """Whether a tool_choice (or allowed_tools) entry names this tool."""
        return bool(choice.get("type") == self.raw.get("type"))

    def matches(self, choice: dict[str, Any]) -> list[str]:
        """The engine names a tool_choice entry picks from this tool (none: another tool)."""
        return [f.name for f in self.functions()] if self.named_by(choice) else []

    def slot(self) -> tuple[str, ...]:
        """What no other tool of the request may share: its kind (MCP: its server label)."""
        return (self.kind,)

    def unavailable(self, deps: ToolDeps) -> tuple[str, str | None] | None:
        """Why this server cannot run the tool (message, error code), or None. Such a tool
        is left off the model's menu; only a tool_choice forcing it is a 400."""
        return None

    async def check(
        self, project_id: str, param: str, deps: ToolDeps, history: list[dict[str, Any]]
    ) -> None:
        """Rejects the request (4xx) before any event when the tool cannot run; `history`:
        the thread's earlier items."""
        return None

    async def open(self, run: ToolRun) -> AsyncIterator[StreamEvent | Outcome]:
        """Before the first model turn: events of work done then, and Outcomes (with their
        `call`) the model should read first."""
        return
        yield

    @abstractmethod
    def run(self, call: ToolCall, run: ToolRun) -> AsyncIterator[StreamEvent | Outcome]:
        """The call's events, then exactly one Outcome."""
