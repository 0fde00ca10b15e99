"""Function calling on models run in-process: how tools are shown to the model, how its calls
are written (Hermes-style `<tool_call>{json}</tool_call>`, what Qwen and many GGUF templates
use), and the grammar that makes a required call come out valid for its schema."""

from __future__ import annotations

import json
import re
from typing import Any

from kotae.providers.inference.base import ChatMessage, FunctionSpec, ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def openai_tools(tools: list[FunctionSpec]) -> list[dict[str, Any]]:
    """Tools as chat templates that know tools expect them (the chat-completions shape)."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description or "",
                "parameters": t.parameters,
            },
        }
        for t in tools
    ]


def system_prompt(tools: list[FunctionSpec], required: bool) -> str:
    """For templates that know nothing of tools: the tools and the call format, in words."""
    lines = [
        "You can call functions. To call one, answer with exactly:",
        f'{OPEN}{{"name": "<function name>", "arguments": {{<arguments as JSON>}}}}{CLOSE}',
        "You must call one of them now."
        if required
        else "Call a function only when it helps; otherwise answer normally.",
        "Functions:",
    ]
    for t in tools:
        lines.append(
            json.dumps(
                {"name": t.name, "description": t.description or "", "parameters": t.parameters},
                ensure_ascii=False,
            )
        )
    return "\n".join(lines)


def template_messages(messages: list[ChatMessage], native: bool) -> list[dict[str, Any]]:
    """Messages for the Jinja chat template. `native`: the template renders tool calls and
    tool results itself; otherwise they are written into the text."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant" and m.reasoning:
            # Where the template takes past thinking (Qwen3's, DeepSeek-R1's); most drop it.
            out.append({**_templated(m, native), "reasoning_content": m.reasoning})
        else:
            out.append(_templated(m, native))
    return out


def _templated(m: ChatMessage, native: bool) -> dict[str, Any]:
    if m.role == "tool":
        if native:
            return {"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id}
        return {"role": "user", "content": f"<tool_response>\n{m.content}\n</tool_response>"}
    if m.role != "assistant" or not m.tool_calls:
        return {"role": m.role, "content": m.content}
    if not native:
        calls = "\n".join(write_call(c) for c in m.tool_calls)
        return {"role": "assistant", "content": f"{m.content}\n{calls}" if m.content else calls}
    return {
        "role": "assistant",
        "content": m.content or "",
        "tool_calls": [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": _as_object(c.arguments)},
            }
            for c in m.tool_calls
        ],
    }


def write_call(call: ToolCall) -> str:
    body = {"name": call.name, "arguments": _as_object(call.arguments)}
    return f"{OPEN}{json.dumps(body, ensure_ascii=False)}{CLOSE}"


def _as_object(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def call_schema(tools: list[FunctionSpec]) -> dict[str, Any]:
    """JSON schema of one call of these tools: {"name": ..., "arguments": {...}}."""
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": _strict_parameters(t.parameters),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def call_grammar(tools: list[FunctionSpec], parallel: bool) -> str:
    """GBNF for one valid call of these tools; in parallel mode, up to one a tool (a small
    model left unbounded repeats the same call until it runs out of tokens)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(call_schema(tools)), prop_order=["name", "arguments"])
    gbnf = re.sub(r"^root ::=", "call ::=", gbnf, count=1, flags=re.MULTILINE)
    one = f'"{OPEN}" call "{CLOSE}"'
    root = f"root ::= {one}"
    for _ in range(min(len(tools), 8) - 1 if parallel else 0):
        root += f' ("\\n" {one}'
    root += ")?" * (root.count("(") if parallel else 0)
    return f"{root}\n{gbnf}"


def _strict_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    # An object schema without additionalProperties would let a small model invent keys.
    if not parameters:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    if parameters.get("type") == "object" and "additionalProperties" not in parameters:
        parameters = {**parameters, "additionalProperties": False}
    strict: dict[str, Any] = enforceable(parameters)
    return strict


MAX_ENUMERATED_RANGE = 1000


def enforceable(schema: Any) -> Any:
    """The schema with what llama-cpp-python's grammar converter skips rewritten into what it
    enforces: integer ranges (minimum/maximum/exclusive*) of up to 1000 values become enums."""
    if isinstance(schema, list):
        return [enforceable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: enforceable(v) for k, v in schema.items()}
    if out.get("type") == "integer" and "enum" not in out:
        low = out.get("minimum")
        high = out.get("maximum")
        if isinstance(out.get("exclusiveMinimum"), int | float):
            low = int(out["exclusiveMinimum"]) + 1
        if isinstance(out.get("exclusiveMaximum"), int | float):
            high = int(out["exclusiveMaximum"]) - 1
        if isinstance(low, int | float) and isinstance(high, int | float):
            lo, hi = int(-(-low // 1)), int(high // 1)
            if 0 <= hi - lo < MAX_ENUMERATED_RANGE:
                out = {"enum": list(range(lo, hi + 1))}
    return out


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def may_be_bare_call(head: str) -> bool:
    """Whether output that starts with `head` may still become a call written without the
    tags: a JSON object (or list of them) opening with "name", bare or in a ```json fence.
    Small models (Qwen2.5-Coder among them) write calls so even when shown the tags."""
    rest = head
    if rest.startswith("```") or "```".startswith(rest):
        rest = rest[3:]
        if "json".startswith(rest):
            return True
        rest = rest.removeprefix("json").lstrip()
        if not rest:
            return True
    rest = rest.removeprefix("[").lstrip()
    if not rest:
        return True
    if not rest.startswith("{"):
        return False
    # `{{`: Qwen2.5's template shows the format with doubled braces, and models copy them.
    rest = rest[2 if rest.startswith("{{") else 1 :].lstrip()
    return '"name"'.startswith(rest) or rest.startswith('"name"')


def bare_calls(text: str, names: set[str]) -> list[tuple[str, str]] | None:
    """Calls written as JSON without the tags, naming only offered tools; else None (the
    text is an answer that happens to be JSON)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    value = _loads_call(body)
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or set(item) - {"name", "arguments"}:
            return None
        name, args = item.get("name"), item.get("arguments", {})
        if name not in names or not isinstance(args, dict | str):
            return None
        text_args = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        calls.append((name, text_args))
    return calls or None


def _loads_call(text: str) -> Any:
    """JSON, or None. Braces doubled at either end (`{{...}}`, copied from Qwen2.5's
    template, often with one of the closing pair left out) are taken as single."""
    body = text.strip()
    while body.startswith("{{"):
        body = body[1:]
    try:
        value, end = json.JSONDecoder().raw_decode(body)
    except ValueError:
        return None
    return value if not body[end:].strip().strip("}") else None


def same_call(name: str, arguments: str) -> tuple[str, str]:
    """A call's identity: its name and its arguments in one canonical JSON spelling."""
    try:
        return name, json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False)
    except ValueError:
        return name, arguments


def answered_calls(messages: list[ChatMessage]) -> set[tuple[str, str]]:
    """The calls in a conversation whose results it already holds."""
    results = {m.tool_call_id for m in messages if m.role == "tool"}
    return {
        same_call(c.name, c.arguments)
        for m in messages
        if m.role == "assistant"
        for c in m.tool_calls or []
        if c.call_id in results
    }


def parse_calls(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(text before the first call, [(name, arguments JSON)]) when the output holds calls
    that parse; None when it holds none, or any that does not parse."""
    if OPEN not in text:
        return None
    calls = []
    for raw in _CALL.findall(text):
        body = _loads_call(raw)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return None
        args = body.get("arguments", {})
        calls.append(
            (body["name"], args if isinstance(args, str) else json.dumps(args, ensure_ascii=False))
        )
    if not calls:
        return None
    return text[: text.index(OPEN)].strip(), calls
