"""The request's `tools` and `tool_choice`, checked and turned into what engines take: the
client's tools as functions, the server's built-in tools as objects the agent loop runs."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kotae.errors import InvalidRequest, invalid_from
from kotae.providers.inference.base import FunctionSpec, ToolMode
from kotae.schemas.responses import FunctionTool
from kotae.services.responses.builtin import REGISTRY, BuiltinTool, ToolDeps

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Coding agents' own tools: offered to the model as functions whose arguments are the call's
# action, and returned as the item type the agent expects (shell_call, local_shell_call,
# apply_patch_call). The agent runs them; kotae never does.
_COMMANDS = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 32}
AGENT_TOOLS = {
    "shell": FunctionSpec(
        "shell",
        "Run shell commands in the user's workspace; returns their output.",
        {"type": "object", "properties": {"commands": _COMMANDS}, "required": ["commands"]},
    ),
    "local_shell": FunctionSpec(
        "local_shell",
        "Run one command (argv list) on the user's machine.",
        {
            "type": "object",
            "properties": {"command": _COMMANDS, "working_directory": {"type": "string"}},
            "required": ["command"],
        },
    ),
    "apply_patch": FunctionSpec(
        "apply_patch",
        "Create, update or delete a file. `diff` is the new content (create) or a unified "
        "diff (update).",
        {
            "type": "object",
            "properties": {
                "type": {"enum": ["create_file", "update_file", "delete_file"]},
                "path": {"type": "string"},
                "diff": {"type": "string"},
            },
            "required": ["type", "path", "diff"],
        },
    ),
}
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass
class ToolSetup:
    functions: list[FunctionSpec]  # the client's tools, as the engine sees them
    echo: list[dict[str, Any]]  # the tools as the response shows them
    builtins: list[BuiltinTool] = field(default_factory=list)
    # tool_choice: the first turn's mode, and the entries naming the tools the model may call
    # (a forced tool, or allowed_tools); None: any.
    mode: ToolMode = "auto"
    picks: list[dict[str, Any]] | None = None
    forced: bool = False  # one tool forced: only the first turn is held to it
    # Engine-facing name -> (kind, namespace, name as the client knows it).
    lookup: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)

    @property
    def holds_secrets(self) -> bool:
        """Whether a tool carries credentials (kept in this process's memory only)."""
        return any(b.holds_secrets() for b in self.builtins)

    def builtin(self, engine_name: str) -> BuiltinTool | None:
        """The built-in tool a call of `engine_name` runs, or None for a client's tool."""
        return next(
            (b for b in self.builtins if any(f.name == engine_name for f in b.functions())),
            None,
        )

    def allowed(self, turn: int = 0) -> list[str] | None:
        """The engine names the model may call on `turn` (tool_choice), or None for all:
        allowed_tools holds on every turn, a forced tool on the first."""
        if self.picks is None or (self.forced and turn > 0):
            return None
        names: list[str] = []
        for pick in self.picks:
            client = _client_name(pick)
            if client is not None:
                names.append(client)
                continue
            for tool in self.builtins:
                names.extend(tool.matches(pick))
        return names

    def drop_unavailable(self, deps: ToolDeps) -> list[tuple[BuiltinTool, str]]:
        """Leaves the built-ins this server cannot run (no search engine, no image model)
        off the model's menu; the response still echoes them. Only a tool_choice that then
        leaves nothing to call (one forcing such a tool) is a 400. Returns those dropped,
        each with why."""
        dropped = [(t, why) for t in self.builtins if (why := t.unavailable(deps)) is not None]
        if not dropped:
            return []
        self.builtins = [t for t in self.builtins if all(t is not d for d, _ in dropped)]
        allowed = self.allowed()
        nothing_left = not self.functions and not self.builtins
        if self.mode == "required" and (allowed == [] or (allowed is None and nothing_left)):
            named = [d for d in dropped if any(d[0].named_by(p) for p in self.picks or [])]
            tool, (message, code) = (named or dropped)[0]
            raise InvalidRequest(message, param=f"tools[{tool.index}].type", code=code)
        return [(tool, message) for tool, (message, _) in dropped]

    def allowed_functions(self) -> list[str] | None:
        """`allowed()` among the client's functions (chat completions has only those)."""
        allowed = self.allowed()
        if allowed is None:
            return None
        return [f.name for f in self.functions if f.name in allowed]


# More tools than this are read in a thread: their checks would hold the event loop.
MANY_TOOLS = 100


async def read_tools(raw_tools: list[dict[str, Any]] | None, raw_choice: Any) -> ToolSetup:
    """parse_tools, off the event loop for a long list (100,000 held it ~0.7 s)."""
    if raw_tools is not None and len(raw_tools) > MANY_TOOLS:
        return await asyncio.to_thread(parse_tools, raw_tools, raw_choice)
    return parse_tools(raw_tools, raw_choice)


def parse_tools(raw_tools: list[dict[str, Any]] | None, raw_choice: Any) -> ToolSetup:
    functions: list[FunctionSpec] = []
    lookup: dict[str, tuple[str, str | None, str]] = {}
    echo: list[dict[str, Any]] = []
    builtins: list[BuiltinTool] = []
    taken: set[tuple[str, ...]] = set()
    for i, raw in enumerate(raw_tools or []):
        kind = raw.get("type")
        made = REGISTRY.get(str(kind))
        if made is not None:
            tool = made(raw, i)
            slot = tool.slot()
            if slot in taken:  # a set: every earlier tool compared was quadratic
                raise InvalidRequest(f"Only one {tool.kind} tool is allowed.", param=f"tools[{i}]")
            taken.add(slot)
            builtins.append(tool)
            echo.append(tool.echo())
            continue
        if kind == "custom":
            spec = _custom(raw, i)
            _add(functions, lookup, spec, ("custom", None, spec.name), i)
            echo.append(dict(raw))
            continue
        if kind in AGENT_TOOLS:
            spec = AGENT_TOOLS[kind]
            _add(functions, lookup, spec, (kind, None, spec.name), i)
            echo.append(dict(raw))
            continue
        if kind == "namespace":
            _namespace(raw, i, functions, lookup)
            echo.append(dict(raw))
            continue
        if kind != "function":
            raise InvalidRequest(
                f"Tool type '{kind}' is not supported by this server yet.",
                param=f"tools[{i}].type",
            )
        spec = _function(raw, f"tools[{i}]")
        _add(functions, lookup, spec, ("function", None, spec.name), i)
        echo.append(
            {
                "type": "function",
                "name": spec.name,
                "description": spec.description,
                "parameters": spec.parameters,
                "strict": spec.strict,
            }
        )
    setup = ToolSetup(functions, echo, builtins, lookup=lookup)
    setup.mode, setup.picks = _choice(raw_choice, setup)
    setup.forced = isinstance(raw_choice, dict) and raw_choice.get("type") != "allowed_tools"
    return setup


def _namespace(
    raw: dict[str, Any],
    i: int,
    functions: list[FunctionSpec],
    lookup: dict[str, tuple[str, str | None, str]],
) -> None:
    ns = raw.get("name")
    inner = raw.get("tools")
    if not isinstance(ns, str) or not ns or not isinstance(inner, list):
        raise InvalidRequest("A namespace tool needs a name and tools.", param=f"tools[{i}]")
    for j, sub in enumerate(inner):
        if sub.get("type") != "function":
            raise InvalidRequest(
                "Namespaces hold function tools.", param=f"tools[{i}].tools[{j}].type"
            )
        # Inner tools may carry fields only OpenAI's own runtime reads.
        known = {k: v for k, v in sub.items() if k in FunctionTool.model_fields}
        fn = _function(known, f"tools[{i}].tools[{j}]")
        spec = FunctionSpec(f"{ns}__{fn.name}", fn.description, fn.parameters, fn.strict)
        _add(functions, lookup, spec, ("function", ns, fn.name), i)


def _client_name(pick: dict[str, Any]) -> str | None:
    """The engine name a tool_choice entry gives a client's tool; None for a built-in."""
    kind = pick.get("type")
    if kind in AGENT_TOOLS:
        return AGENT_TOOLS[kind].name
    if kind in ("function", "custom"):
        name = pick.get("name")
        if pick.get("namespace"):
            name = f"{pick['namespace']}__{name}"
        return str(name)
    return None


def _pick(pick: Any, setup: ToolSetup, param: str) -> dict[str, Any]:
    """A tool_choice entry checked against the tools given."""
    if not isinstance(pick, dict):
        raise InvalidRequest(f"tool_choice '{pick}' is not supported.", param=param)
    client = _client_name(pick)
    if client is not None:
        if client not in setup.lookup:
            what = f"function '{client}'" if pick.get("type") in ("function", "custom") else client
            raise InvalidRequest(f"tool_choice names {what}, which is not in tools.", param=param)
        return pick
    kind = pick.get("type")
    if str(kind) not in REGISTRY:
        raise InvalidRequest(f"tool_choice '{kind}' is not supported.", param=param)
    if not any(tool.named_by(pick) for tool in setup.builtins):
        raise InvalidRequest(f"tool_choice names {kind}, which is not in tools.", param=param)
    return pick


def _choice(raw: Any, setup: ToolSetup) -> tuple[ToolMode, list[dict[str, Any]] | None]:
    if raw is None or raw == "auto":
        return "auto", None
    if raw == "none":
        return "none", None
    if raw == "required":
        if not setup.functions and not setup.builtins:
            raise InvalidRequest(
                "tool_choice 'required' needs at least one tool.", param="tool_choice"
            )
        return "required", None
    if isinstance(raw, dict) and raw.get("type") == "allowed_tools":
        mode = raw.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise InvalidRequest(
                "allowed_tools mode must be auto or required.", param="tool_choice.mode"
            )
        listed = raw.get("tools") or []
        if not isinstance(listed, list) or not listed:
            raise InvalidRequest(
                "allowed_tools needs at least one tool.", param="tool_choice.tools"
            )
        picks = [_pick(t, setup, f"tool_choice.tools[{j}]") for j, t in enumerate(listed)]
        return mode, picks
    return "required", [_pick(raw, setup, "tool_choice")]


def _add(
    functions: list[FunctionSpec],
    lookup: dict[str, tuple[str, str | None, str]],
    spec: FunctionSpec,
    origin: tuple[str, str | None, str],
    index: int,
) -> None:
    if spec.name in lookup:
        raise InvalidRequest(
            f"Duplicate function name '{origin[2]}'.", param=f"tools[{index}].name"
        )
    functions.append(spec)
    lookup[spec.name] = origin


def _function(raw: dict[str, Any], where: str) -> FunctionSpec:
    try:
        tool = FunctionTool.model_validate(raw)
    except ValidationError as exc:
        raise invalid_from(exc, "tool", where) from exc
    return FunctionSpec(
        tool.name, tool.description, tool.parameters or EMPTY_PARAMETERS, tool.strict is not False
    )


def _custom(raw: dict[str, Any], index: int) -> FunctionSpec:
    """A freeform tool, offered to the model as a function of one string, `input`."""
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequest(
            "A custom tool needs a name of letters, digits, _ or -.", param=f"tools[{index}].name"
        )
    fmt = raw.get("format") or {"type": "text"}
    hint = ""
    if fmt.get("type") == "grammar":
        hint = (
            f" The input must follow this {fmt.get('syntax', 'lark')} grammar:\n"
            f"{fmt.get('definition', '')}"
        )
    elif fmt.get("type") != "text":
        raise InvalidRequest(
            "custom tool format must be text or grammar.", param=f"tools[{index}].format.type"
        )
    return FunctionSpec(
        name,
        f"{raw.get('description') or ''}{hint}".strip() or None,
        {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
        True,
    )
