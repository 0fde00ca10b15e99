"""The request's `tools` and `tool_choice`, checked and turned into what engines take."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kotae.errors import InvalidRequest, invalid_from
from kotae.providers.inference.base import FunctionSpec, ToolMode
from kotae.schemas.responses import FunctionTool

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
class FileSearchSpec:
    vector_store_ids: list[str]
    max_num_results: int
    filters: dict[str, Any] | None
    ranking_options: dict[str, Any] | None


WEB_TYPES = {
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
}


@dataclass
class WebSearchSpec:
    context_size: str
    allowed_domains: list[str] | None
    country: str | None


@dataclass
class ToolSetup:
    functions: list[FunctionSpec]
    mode: ToolMode
    allowed: list[str] | None
    echo: list[dict[str, Any]]  # the tools as the response shows them
    file_search: FileSearchSpec | None = None
    search_mode: ToolMode = "none"
    web_search: WebSearchSpec | None = None
    web_mode: ToolMode = "none"
    image_generation: dict[str, Any] | None = None  # the tool's options
    image_mode: ToolMode = "none"
    # Engine-facing name -> (kind, namespace, name as the client knows it).
    lookup: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)


IMAGE_OPTIONS = {
    "type",
    "model",
    "size",
    "quality",
    "output_format",
    "output_compression",
    "background",
    "partial_images",
    "moderation",
    "input_fidelity",
    "action",
}


def parse_tools(raw_tools: list[dict[str, Any]] | None, raw_choice: Any) -> ToolSetup:
    image: dict[str, Any] | None = None
    image_mode: ToolMode = "none"
    others = [t for t in raw_tools or [] if t.get("type") != "image_generation"]
    for i, raw in enumerate(raw_tools or []):
        if raw.get("type") != "image_generation":
            continue
        if image is not None:
            raise InvalidRequest("Only one image_generation tool is allowed.", param=f"tools[{i}]")
        for key in raw:
            if key not in IMAGE_OPTIONS:
                raise InvalidRequest(
                    f"image_generation option '{key}' is not supported by this server.",
                    param=f"tools[{i}].{key}",
                )
        image = dict(raw)
    choice = raw_choice
    if image is not None:
        image_mode = "auto"
        if isinstance(raw_choice, dict) and raw_choice.get("type") == "image_generation":
            image_mode, choice = "required", "none"
        elif raw_choice == "none":
            image_mode = "none"
        elif raw_choice == "required" and not others:
            image_mode, choice = "required", "none"
        elif isinstance(raw_choice, dict):
            image_mode = "none"
    setup = _parse_without_images(raw_tools, choice)
    if image is not None:
        setup.image_generation, setup.image_mode = image, image_mode
        setup.echo.append(image)
    return setup


def _parse_without_images(raw_tools: list[dict[str, Any]] | None, raw_choice: Any) -> ToolSetup:
    web: WebSearchSpec | None = None
    rest: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_tools or []):
        if raw.get("type") in WEB_TYPES:
            if web is not None:
                raise InvalidRequest("Only one web search tool is allowed.", param=f"tools[{i}]")
            web = _web_search(raw, i)
        rest.append(raw)
    choice = raw_choice
    web_mode: ToolMode = "none"
    if web is not None:
        web_mode = "auto"
        if isinstance(raw_choice, dict) and raw_choice.get("type") in WEB_TYPES:
            web_mode, choice = "required", "none"
        elif raw_choice == "none":
            web_mode = "none"
        elif raw_choice == "required":
            others = [t for t in rest if t.get("type") not in WEB_TYPES]
            web_mode = "required" if not others else "auto"
            choice = "none" if not others else raw_choice
        elif isinstance(raw_choice, dict):
            web_mode = "none"
    setup = _parse(rest, choice)
    setup.web_search, setup.web_mode = web, web_mode
    if web is not None:
        setup.echo = [e for e in setup.echo if e.get("type") not in WEB_TYPES]
        for raw in raw_tools or []:
            if raw.get("type") in WEB_TYPES:
                setup.echo.append(dict(raw))
    return setup


def _web_search(raw: dict[str, Any], index: int) -> WebSearchSpec:
    allowed = {
        "type",
        "search_context_size",
        "user_location",
        "filters",
        "search_content_types",
        "external_web_access",
    }
    for key in raw:
        if key not in allowed:
            raise InvalidRequest(
                f"Unknown parameter: 'tools[{index}].{key}'.", param=f"tools[{index}].{key}"
            )
    size = raw.get("search_context_size") or "medium"
    if size not in ("low", "medium", "high"):
        raise InvalidRequest(
            "search_context_size must be low, medium or high.",
            param=f"tools[{index}].search_context_size",
        )
    domains = (raw.get("filters") or {}).get("allowed_domains")
    country = (raw.get("user_location") or {}).get("country")
    return WebSearchSpec(size, list(domains) if domains else None, country)


def _parse(raw_tools: list[dict[str, Any]] | None, raw_choice: Any) -> ToolSetup:
    lookup: dict[str, tuple[str, str | None, str]] = {}
    setup = _parse_tools(raw_tools, raw_choice, lookup)
    setup.lookup = lookup
    return setup


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


def _parse_tools(
    raw_tools: list[dict[str, Any]] | None,
    raw_choice: Any,
    lookup: dict[str, tuple[str, str | None, str]],
) -> ToolSetup:
    functions: list[FunctionSpec] = []
    echo: list[dict[str, Any]] = []
    file_search: FileSearchSpec | None = None
    for i, raw in enumerate(raw_tools or []):
        kind = raw.get("type")
        if kind in WEB_TYPES or kind == "image_generation":
            continue
        if kind == "file_search":
            if file_search is not None:
                raise InvalidRequest("Only one file_search tool is allowed.", param=f"tools[{i}]")
            file_search = _file_search(raw, i)
            echo.append({"type": "file_search", **{k: v for k, v in raw.items() if k != "type"}})
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
            ns = raw.get("name")
            inner = raw.get("tools")
            if not isinstance(ns, str) or not ns or not isinstance(inner, list):
                raise InvalidRequest(
                    "A namespace tool needs a name and tools.", param=f"tools[{i}]"
                )
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
    if isinstance(raw_choice, dict) and raw_choice.get("type") == "file_search":
        if file_search is None:
            raise InvalidRequest(
                "tool_choice names file_search, which is not in tools.", param="tool_choice"
            )
        return ToolSetup(
            functions, "auto" if functions else "none", None, echo, file_search, "required"
        )
    if isinstance(raw_choice, dict) and raw_choice.get("type") == "allowed_tools":
        listed = raw_choice.get("tools") or []
        searchable = any(t.get("type") == "file_search" for t in listed)
        rest = {**raw_choice, "tools": [t for t in listed if t.get("type") != "file_search"]}
        if searchable and not rest["tools"]:
            if file_search is None:
                raise InvalidRequest(
                    "allowed_tools names file_search, which is not in tools.",
                    param="tool_choice.tools",
                )
            mode = raw_choice.get("mode", "auto")
            return ToolSetup(
                functions,
                "none",
                None,
                echo,
                file_search,
                "required" if mode == "required" else "auto",
            )
        mode, allowed = _choice(rest, [f.name for f in functions])
        return ToolSetup(
            functions,
            mode,
            allowed,
            echo,
            file_search if searchable else None,
            "auto" if searchable else "none",
        )
    names = [f.name for f in functions]
    if raw_choice == "required" and file_search is not None and not names:
        return ToolSetup(functions, "none", None, echo, file_search, "required")
    mode, allowed = _choice(raw_choice, names)
    search_mode: ToolMode = "none"
    if file_search is not None and mode != "none" and allowed is None:
        search_mode = "auto"
    return ToolSetup(functions, mode, allowed, echo, file_search, search_mode)


def _file_search(raw: dict[str, Any], index: int) -> FileSearchSpec:
    ids = raw.get("vector_store_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest(
            "file_search needs vector_store_ids.", param=f"tools[{index}].vector_store_ids"
        )
    allowed = {"type", "vector_store_ids", "max_num_results", "filters", "ranking_options"}
    for key in raw:
        if key not in allowed:
            raise InvalidRequest(
                f"Unknown parameter: 'tools[{index}].{key}'.", param=f"tools[{index}].{key}"
            )
    k = raw.get("max_num_results", 10)
    if not isinstance(k, int) or not 1 <= k <= 50:
        raise InvalidRequest(
            "max_num_results must be between 1 and 50.", param=f"tools[{index}].max_num_results"
        )
    return FileSearchSpec(ids, k, raw.get("filters"), raw.get("ranking_options"))


def _choice(raw: Any, names: list[str]) -> tuple[ToolMode, list[str] | None]:
    if raw is None or raw == "auto":
        return "auto", None
    if raw == "none":
        return "none", None
    if raw == "required":
        if not names:
            raise InvalidRequest(
                "tool_choice 'required' needs at least one tool.", param="tool_choice"
            )
        return "required", None
    if isinstance(raw, dict) and raw.get("type") in AGENT_TOOLS:
        agent_tool = AGENT_TOOLS[raw["type"]].name
        if agent_tool not in names:
            raise InvalidRequest(
                f"tool_choice names {agent_tool}, which is not in tools.", param="tool_choice"
            )
        return "required", [agent_tool]
    if isinstance(raw, dict) and raw.get("type") in ("function", "custom"):
        name = raw.get("name")
        if raw.get("namespace"):
            name = f"{raw['namespace']}__{name}"
        if name not in names:
            raise InvalidRequest(
                f"tool_choice names function '{name}', which is not in tools.",
                param="tool_choice",
            )
        return "required", [str(name)]
    if isinstance(raw, dict) and raw.get("type") == "allowed_tools":
        mode = raw.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise InvalidRequest(
                "allowed_tools mode must be auto or required.", param="tool_choice.mode"
            )
        allowed = []
        for j, tool in enumerate(raw.get("tools") or []):
            tool_name = tool.get("name")
            if tool.get("namespace"):
                tool_name = f"{tool['namespace']}__{tool_name}"
            if tool.get("type") not in ("function", "custom") or tool_name not in names:
                raise InvalidRequest(
                    "allowed_tools may only name function tools given in tools.",
                    param=f"tool_choice.tools[{j}]",
                )
            allowed.append(str(tool_name))
        if not allowed:
            raise InvalidRequest(
                "allowed_tools needs at least one tool.", param="tool_choice.tools"
            )
        return mode, allowed
    kind = raw.get("type") if isinstance(raw, dict) else raw
    raise InvalidRequest(f"tool_choice '{kind}' is not supported.", param="tool_choice")
