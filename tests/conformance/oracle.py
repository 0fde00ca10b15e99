"""OpenAI's own OpenAPI document as the judge of kotae's wire output: every recorded response
body, and every streamed event, validated against the spec's schemas (JSON Schema 2020-12)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "openai-openapi" / "openapi.yaml"
SPEC_URI = "urn:openai-openapi"
# The operations of OpenAI's API that kotae serves (the rest: assistants, batches, audio,
# realtime...).
SERVED = re.compile(
    r"^/(responses|chat/completions|completions$|embeddings|files|uploads|vector_stores|"
    r"conversations|containers|batches|"
    r"fine_tuning/jobs|images|models)"
)
NOT_SERVED = re.compile(r"\?beta=true$")
NOT_SERVED_OPS: set[tuple[str, str]] = set()

# Where kotae (and, for the first two, OpenAI's own API) differs from OpenAI's document: each
# difference and its reason, applied to the copy of the spec that judges kotae. Nothing else
# may differ.
DIFFERENCES: dict[str, str] = {
    "errors": "every error is the envelope {'error': {...}} (ErrorResponse), as OpenAI's API "
    "answers; a few operations describe their 404 by the inner object",
    "empty pages": "first_id and last_id are null on an empty page, as OpenAI's API answers: "
    "there is no item to name (a non-empty page is checked for string ids apart)",
    "base64 embeddings": "an embedding is a base64 string when encoding_format is base64 (the "
    "SDK asks for it by default), as OpenAI's API answers; the spec knows only the float list",
    "file content": "GET /files/{file_id}/content answers the file's own bytes under its own "
    "media type, as OpenAI's API does; the spec calls it a JSON string",
    "discriminators": "OpenAI's discriminators name only the property; by OpenAPI's rule the "
    "values would then be schema names ('Message'), while each branch's own `type` const "
    "('message') is what OpenAI sends: such discriminators are dropped (oneOf still decides)",
    "file purposes": "a file object's purpose may be 'evals': the spec's own upload request "
    "takes it, but its file object's enum was never given it",
    "stored messages": "GET /chat/completions/{id}/messages lists the request's messages with "
    "their own roles (user, system...), as OpenAI's API answers and the spec's own example "
    "shows; its message schema allows only 'assistant'",
    "legacy stream": "the spec has no chunk schema for a streamed /completions: OpenAI sends "
    "CreateCompletionResponse objects whose finish_reason is null until a choice's last chunk",
    "batch nulls": "a Batch's optional fields (timestamps not reached yet, file ids, errors) "
    "are null until set, as OpenAI's API answers and the spec's own batch examples show "
    '("failed_at": null); its schema types them as bare integers and strings',
    "duplicate required": "a few of the spec's schemas (the container's) list a required "
    "property twice, which OpenAPI forbids; each list is kept once",
    "image sizes": "ImagesResponse.size is the size of the picture actually made: kotae's "
    "image models make other sizes than gpt-image-1's three (256x256, 512x512, ...)",
}


def _differences(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for item in doc["paths"].values():
        for op in item.values():
            for status, answer in (op.get("responses") or {}).items():
                if str(status)[0] in "45" and "application/json" in answer.get("content", {}):
                    answer["content"]["application/json"]["schema"] = error
    for schema in schemas.values():
        props = schema.get("properties") or {}
        if {"data", "first_id", "last_id"} <= set(props):
            for end in ("first_id", "last_id"):
                props[end] = {"anyOf": [props[end], {"type": "null"}]}
    embedding = schemas["Embedding"]["properties"]["embedding"]
    schemas["Embedding"]["properties"]["embedding"] = {"anyOf": [embedding, {"type": "string"}]}
    schemas["ImagesResponse"]["properties"]["size"] = {"type": "string"}
    batch = schemas["Batch"]
    for name, prop in batch["properties"].items():
        if name not in batch.get("required", []):
            batch["properties"][name] = {"anyOf": [prop, {"type": "null"}]}
    chunk = copy.deepcopy(schemas["CreateCompletionResponse"])
    reason = chunk["properties"]["choices"]["items"]["properties"]["finish_reason"]
    reason["enum"] = [*reason["enum"], None]
    reason["type"] = ["string", "null"]
    schemas["CompletionStreamChunk"] = chunk
    listed = copy.deepcopy(schemas["ChatCompletionResponseMessage"])
    listed["properties"]["role"]["enum"] = ["assistant", "user", "system", "developer", "tool"]
    schemas["ChatCompletionMessageList"]["properties"]["data"]["items"]["allOf"][0] = listed
    purpose = schemas["OpenAIFile"]["properties"]["purpose"]
    purpose["enum"] = [*purpose["enum"], "evals"]
    content = doc["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]
    content["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    _drop_bare_discriminators(doc)
    _dedupe_required(doc)


def _dedupe_required(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("required"), list):
            node["required"] = list(dict.fromkeys(node["required"]))
        for value in node.values():
            _dedupe_required(value)
    elif isinstance(node, list):
        for value in node:
            _dedupe_required(value)


def _drop_bare_discriminators(node: Any) -> None:
    if isinstance(node, dict):
        found = node.get("discriminator")
        if isinstance(found, dict) and "mapping" not in found:
            del node["discriminator"]
        for value in node.values():
            _drop_bare_discriminators(value)
    elif isinstance(node, list):
        for value in node:
            _drop_bare_discriminators(value)


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true`, which OpenAI's 3.1 document still uses in places, as
    the JSON Schema it means (a JSON Schema validator ignores the keyword)."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif isinstance(kind, list):
            out["type"] = [*kind, "null"] if "null" not in kind else kind
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def spec() -> dict[str, Any]:
    """OpenAI's document as the judge: `nullable` as JSON Schema, only the operations kotae
    serves, and the DIFFERENCES applied."""
    with SPEC_PATH.open() as f:
        loaded: dict[str, Any] = yaml.load(f, Loader=yaml.CSafeLoader)
    doc: dict[str, Any] = _nullable(loaded)
    paths = {}
    for path, item in doc["paths"].items():
        if not SERVED.match(path) or NOT_SERVED.search(path):
            continue
        kept = {
            method: op
            for method, op in item.items()
            if method in ("get", "post", "delete") and (method.upper(), path) not in NOT_SERVED_OPS
        }
        if kept:
            paths[path] = {**{k: v for k, v in item.items() if k == "parameters"}, **kept}
    doc["paths"] = paths
    _differences(doc)
    return doc


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


@cache
def validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer` (e.g. "#/components/schemas/Response")."""
    return Draft202012Validator({"$ref": SPEC_URI + pointer}, registry=_registry())


def served_operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in spec()["paths"].items()
        for method in item
        if method != "parameters"
    ]


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for _, path in served_operations():
        pattern = re.sub(
            r"\{[^}]+\}", "[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
        )
        out.append((re.compile(f"^{pattern}$"), path))
    # Literal paths first: /responses/compact is not /responses/{response_id}.
    out.sort(key=lambda t: t[1].count("{"))
    return out


def template_of(path: str) -> str | None:
    for pattern, template in _templates():
        if pattern.match(path):
            return template
    return None


def response_pointer(method: str, template: str, status: int) -> str | None:
    """Where the spec keeps the JSON schema of this operation's answer."""
    if status >= 400:
        return "#/components/schemas/ErrorResponse"
    op = spec()["paths"][template][method.lower()]
    answer = op["responses"].get(str(status))
    if answer is None:
        return None
    content = answer.get("content") or {}
    if "application/json" not in content:
        return None
    escaped = template.replace("~", "~0").replace("/", "~1")
    return f"#/paths/{escaped}/{method.lower()}/responses/{status}/content/application~1json/schema"


@dataclass
class Violation:
    where: str  # "POST /responses 200" or "event response.created"
    path: str  # JSON path in the body
    message: str


@dataclass
class Recorder:
    """Records every exchange of an httpx client and judges it by the spec."""

    operations: set[tuple[str, str]] = field(default_factory=set)
    events: int = 0
    bodies: int = 0
    violations: list[Violation] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)

    def hook(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        path = request.url.path.removeprefix("/v1")
        template = template_of(path)
        if template is None:
            return
        method = request.method
        self.operations.add((method, template))
        self.statuses.add(response.status_code)
        kind = response.headers.get("content-type", "")
        where = f"{method} {template} {response.status_code}"
        if kind.startswith("text/event-stream"):
            self._events(template, response.text)
        elif kind.startswith("application/json"):
            pointer = response_pointer(method, template, response.status_code)
            if pointer is not None:
                self.check(where, pointer, response.json())

    def _events(self, template: str, text: str) -> None:
        pointer = (
            "#/components/schemas/CreateChatCompletionStreamResponse"
            if template.startswith("/chat/")
            else "#/components/schemas/CompletionStreamChunk"
            if template == "/completions"
            else "#/components/schemas/ResponseStreamEvent"
        )
        for block in text.split("\n\n"):
            data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
            if not data or data[0] == "[DONE]":
                continue
            event = json.loads(data[0])
            self.events += 1
            kind = event.get("type", "chunk")
            if kind == "error" or ("error" in event and "type" not in event):
                self.check(f"event {kind}", "#/components/schemas/ErrorResponse", event)
            else:
                self.check(f"event {kind}", pointer, event)

    def check(self, where: str, pointer: str, body: Any) -> None:
        self.bodies += 1
        for error in validator(pointer).iter_errors(body):
            location = "/".join(str(p) for p in error.absolute_path)
            self.violations.append(Violation(where, location, best_message(error)))
        if isinstance(body, dict) and body.get("data") and "first_id" in body:
            # Null ends are allowed on empty pages only.
            for end in ("first_id", "last_id"):
                if not isinstance(body[end], str):
                    self.violations.append(Violation(where, end, "null on a page with items"))


def best_message(error: Any) -> str:
    """A oneOf/anyOf failure, told by its closest branch."""
    deepest = error
    while deepest.context:
        deepest = max(deepest.context, key=lambda e: len(e.absolute_path))
    text = f"{deepest.message[:300]} (at {'/'.join(str(p) for p in deepest.absolute_path)})"
    return text
