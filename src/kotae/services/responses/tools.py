"""The request's `tools` and `tool_choice`, checked and turned into what engines take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kotae.errors import InvalidRequest
from kotae.providers.inference.base import FunctionSpec, ToolMode
from kotae.schemas.responses import FunctionTool

EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass
class ToolSetup:
    functions: list[FunctionSpec]
    mode: ToolMode
    allowed: list[str] | None
    echo: list[dict[str, Any]]  # the tools as the response shows them


def parse_tools(raw_tools: list[dict[str, Any]] | None, raw_choice: Any) -> ToolSetup:
    functions: list[FunctionSpec] = []
    echo: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_tools or []):
        kind = raw.get("type")
        if kind != "function":
            raise InvalidRequest(
                f"Tool type '{kind}' is not supported by this server yet.",
                param=f"tools[{i}].type",
            )
        try:
            tool = FunctionTool.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InvalidRequest(
                f"Invalid tool: {err['msg']}", param=f"tools[{i}].{where}".rstrip(".")
            ) from exc
        if any(f.name == tool.name for f in functions):
            raise InvalidRequest(
                f"Duplicate function name '{tool.name}'.", param=f"tools[{i}].name"
            )
        parameters = tool.parameters or EMPTY_PARAMETERS
        strict = tool.strict is not False
        functions.append(FunctionSpec(tool.name, tool.description, parameters, strict))
        echo.append(
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": parameters,
                "strict": strict,
            }
        )
    mode, allowed = _choice(raw_choice, [f.name for f in functions])
    return ToolSetup(functions, mode, allowed, echo)


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
    if isinstance(raw, dict) and raw.get("type") == "function":
        name = raw.get("name")
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
            if tool.get("type") != "function" or tool.get("name") not in names:
                raise InvalidRequest(
                    "allowed_tools may only name function tools given in tools.",
                    param=f"tool_choice.tools[{j}]",
                )
            allowed.append(str(tool["name"]))
        if not allowed:
            raise InvalidRequest(
                "allowed_tools needs at least one tool.", param="tool_choice.tools"
            )
        return mode, allowed
    kind = raw.get("type") if isinstance(raw, dict) else raw
    raise InvalidRequest(f"tool_choice '{kind}' is not supported.", param="tool_choice")
