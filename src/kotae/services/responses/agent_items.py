"""The output items of a coding agent's own tools (shell, local_shell, apply_patch): the model
calls them as functions, and the client (the Codex CLI) reads them as their own item types."""

from __future__ import annotations

from typing import Any

from openai.types.responses import ResponseApplyPatchToolCall, ResponseFunctionShellToolCall
from openai.types.responses.response_output_item import LocalShellCall

from kotae import ids


def agent_call_item(kind: str, call_id: str, args: dict[str, Any]) -> Any:
    """The item a coding agent expects for its own tools."""
    if kind == "shell":
        return ResponseFunctionShellToolCall.model_validate(
            {
                "id": ids.new_id("sh"),
                "type": "shell_call",
                "call_id": call_id,
                "status": "completed",
                "action": {
                    "commands": list(args.get("commands") or []),
                    "timeout_ms": None,
                    "max_output_length": None,
                },
            }
        )
    if kind == "local_shell":
        return LocalShellCall.model_validate(
            {
                "id": ids.new_id("lsh"),
                "type": "local_shell_call",
                "call_id": call_id,
                "status": "completed",
                "action": {
                    "type": "exec",
                    "command": list(args.get("command") or []),
                    "env": {},
                    "working_directory": args.get("working_directory"),
                },
            }
        )
    operation: dict[str, Any] = {
        "type": args.get("type") or "create_file",
        "path": str(args.get("path") or ""),
    }
    if operation["type"] != "delete_file":
        operation["diff"] = str(args.get("diff") or "")
    return ResponseApplyPatchToolCall.model_validate(
        {
            "id": ids.new_id("apc"),
            "type": "apply_patch_call",
            "call_id": call_id,
            "status": "completed",
            "operation": operation,
        }
    )
