"""Training files as OpenAI checks them: JSONL, one chat example a line (`messages`), or the
legacy `prompt`/`completion` pair. A bad line fails with a message that names it."""

from __future__ import annotations

import json
from typing import Any

from kotae.errors import InvalidRequest

ROLES = {"system", "developer", "user", "assistant"}
MIN_EXAMPLES = 10


class InvalidTrainingFile(InvalidRequest):
    default_code = "invalid_training_file"


def _rows(data: bytes, param: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) for each non-blank line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTrainingFile("The file is not UTF-8 text.", param=param) from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidTrainingFile(
                f"Line {number} is not valid JSON: {exc.msg}.", param=param
            ) from exc
        if not isinstance(row, dict):
            raise InvalidTrainingFile(f"Line {number} is not a JSON object.", param=param)
        rows.append((number, row))
    if len(rows) < MIN_EXAMPLES:
        raise InvalidTrainingFile(
            f"The file has {len(rows)} examples; at least {MIN_EXAMPLES} are required.",
            param=param,
        )
    return rows


def load_examples(data: bytes, param: str = "training_file") -> list[list[dict[str, Any]]]:
    """Each example as a list of {role, content, weight}; `weight` 0 skips an assistant turn."""
    return [_example(row, number, param) for number, row in _rows(data, param)]


def load_preferences(data: bytes, param: str = "training_file") -> list[dict[str, Any]]:
    """DPO examples, OpenAI's format: `input.messages`, then one `preferred_output` and one
    `non_preferred_output` assistant message. As {prompt, chosen, rejected}."""
    out = []
    for number, row in _rows(data, param):
        given = row.get("input")
        messages = given.get("messages") if isinstance(given, dict) else None
        if not isinstance(messages, list) or not messages:
            raise InvalidTrainingFile(f"Line {number} has no 'input.messages' list.", param=param)
        prompt = [
            _message(m, f"Line {number}, input.messages[{i}]", param)
            for i, m in enumerate(messages)
        ]
        answers = []
        for key in ("preferred_output", "non_preferred_output"):
            value = row.get(key)
            if (
                not isinstance(value, list)
                or len(value) != 1
                or not isinstance(value[0], dict)
                or value[0].get("role") != "assistant"
                or not isinstance(value[0].get("content"), str)
                or not value[0]["content"]
            ):
                raise InvalidTrainingFile(
                    f"Line {number}: '{key}' must be a list of one assistant message with "
                    "text content.",
                    param=param,
                )
            answers.append(value[0]["content"])
        out.append({"prompt": prompt, "chosen": answers[0], "rejected": answers[1]})
    return out


def _example(row: dict[str, Any], number: int, param: str) -> list[dict[str, Any]]:
    if "messages" not in row and "prompt" in row and "completion" in row:
        prompt, completion = row["prompt"], row["completion"]
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise InvalidTrainingFile(
                f"Line {number}: prompt and completion must be strings.", param=param
            )
        return [
            {"role": "user", "content": prompt, "weight": 0},
            {"role": "assistant", "content": completion, "weight": 1},
        ]
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidTrainingFile(
            f"Line {number} has no 'messages' list (or 'prompt' and 'completion').", param=param
        )
    out = [_message(m, f"Line {number}, messages[{i}]", param) for i, m in enumerate(messages)]
    if not any(m["role"] == "assistant" and m["weight"] for m in out):
        raise InvalidTrainingFile(
            f"Line {number} has no assistant message to learn from.", param=param
        )
    return out


def _message(m: Any, where: str, param: str) -> dict[str, Any]:
    if not isinstance(m, dict) or m.get("role") not in ROLES | {"tool", "function"}:
        raise InvalidTrainingFile(
            f"{where}: role must be one of system, user, assistant.", param=param
        )
    if m["role"] in ("tool", "function") or m.get("tool_calls") or m.get("function_call"):
        raise InvalidTrainingFile(
            f"{where}: examples with tool calls are not supported by this server yet.",
            param=param,
        )
    content = m.get("content")
    if not isinstance(content, str) or not content:
        raise InvalidTrainingFile(f"{where}: content must be a non-empty string.", param=param)
    weight = m.get("weight", 1 if m["role"] == "assistant" else 0)
    if weight not in (0, 1):
        raise InvalidTrainingFile(f"{where}: weight must be 0 or 1.", param=param)
    role = "system" if m["role"] == "developer" else m["role"]
    return {"role": role, "content": content, "weight": weight}
