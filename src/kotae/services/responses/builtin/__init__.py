"""The server-side tools, one module each. Adding one: a BuiltinTool subclass in its own module
and an entry here for each `type` the request may name it by."""

from __future__ import annotations

from kotae.services.responses.builtin.base import BuiltinTool, Outcome, ToolDeps, ToolRun
from kotae.services.responses.builtin.code_interpreter import CodeInterpreter
from kotae.services.responses.builtin.file_search import FileSearch
from kotae.services.responses.builtin.image_generation import ImageGeneration
from kotae.services.responses.builtin.mcp import Mcp
from kotae.services.responses.builtin.web_search import WEB_TYPES, WebSearch

REGISTRY: dict[str, type[BuiltinTool]] = {
    "code_interpreter": CodeInterpreter,
    "file_search": FileSearch,
    "image_generation": ImageGeneration,
    "mcp": Mcp,
    **dict.fromkeys(WEB_TYPES, WebSearch),
}

__all__ = ["REGISTRY", "BuiltinTool", "Outcome", "ToolDeps", "ToolRun"]
