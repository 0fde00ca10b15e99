"""Reusable prompts: versions stored per project, and a request's `prompt` reference rendered
into the instructions and input messages it stands for. `{{name}}` placeholders take the
request's variables (or the version's defaults): a string or an input_text part is text; an
input_image or input_file part becomes a part of the message where its placeholder stood."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, func, select

from kotae.errors import InvalidRequest, NotFound
from kotae.ids import new_id
from kotae.storage.orm import PromptVersion

PROMPTS = cast(Table, PromptVersion.__table__)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
MEDIA = ("input_image", "input_file")


@dataclass
class Rendered:
    """A prompt reference made concrete: what the request gets from its template."""

    instructions: str | None
    messages: list[dict[str, Any]]
    model: str | None


def prompt_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "prompt",
        "version": str(row["version"]),
        "created_at": row["created_at"],
        **row["body"],
    }


class PromptsService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._add(project_id, new_id("pmpt"), 1, body)

    def add_version(self, project_id: str, prompt_id: str, body: dict[str, Any]) -> dict[str, Any]:
        latest = self._latest(project_id, prompt_id)
        if latest is None:
            raise NotFound(f"Prompt '{prompt_id}' not found.", param="prompt_id")
        return self._add(project_id, prompt_id, latest + 1, body)

    def _add(
        self, project_id: str, prompt_id: str, version: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        row = {
            "id": prompt_id,
            "version": version,
            "project_id": project_id,
            "created_at": int(time.time()),
            "body": body,
        }
        with self._engine.begin() as conn:
            conn.execute(PROMPTS.insert(), row)
        return prompt_object(row)

    def _latest(self, project_id: str, prompt_id: str) -> int | None:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(func.max(PROMPTS.c.version)).where(
                    PROMPTS.c.id == prompt_id, PROMPTS.c.project_id == project_id
                )
            ).scalar()
        return int(found) if found is not None else None

    def get(self, project_id: str, prompt_id: str, version: str | None = None) -> dict[str, Any]:
        number = self._latest(project_id, prompt_id)
        if number is None:
            raise NotFound(f"Prompt '{prompt_id}' not found.", param="prompt_id")
        if version is not None:
            if not version.isdigit():
                raise InvalidRequest(
                    f"Prompt version '{version}' is not a number.", param="version"
                )
            number = int(version)
        with self._engine.connect() as conn:
            row = conn.execute(
                select(PROMPTS).where(
                    PROMPTS.c.id == prompt_id,
                    PROMPTS.c.project_id == project_id,
                    PROMPTS.c.version == number,
                )
            ).first()
        if row is None:
            raise NotFound(f"Prompt '{prompt_id}' has no version '{version}'.", param="version")
        return prompt_object(dict(row._mapping))

    def listing(self, project_id: str) -> list[dict[str, Any]]:
        """Each prompt at its latest version, newest first."""
        with self._engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    select(PROMPTS)
                    .where(PROMPTS.c.project_id == project_id)
                    .order_by(PROMPTS.c.pk.desc())
                )
            ]
        seen: set[str] = set()
        latest = []
        for row in rows:
            if row["id"] not in seen:
                seen.add(row["id"])
                latest.append(prompt_object(row))
        return latest

    def versions(self, project_id: str, prompt_id: str) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    select(PROMPTS)
                    .where(PROMPTS.c.id == prompt_id, PROMPTS.c.project_id == project_id)
                    .order_by(PROMPTS.c.version.desc())
                )
            ]
        if not rows:
            raise NotFound(f"Prompt '{prompt_id}' not found.", param="prompt_id")
        return [prompt_object(r) for r in rows]

    def delete(self, project_id: str, prompt_id: str) -> None:
        self.get(project_id, prompt_id)
        with self._engine.begin() as conn:
            conn.execute(
                delete(PROMPTS).where(PROMPTS.c.id == prompt_id, PROMPTS.c.project_id == project_id)
            )

    # -- rendering -------------------------------------------------------------------------

    def render(self, project_id: str, ref: dict[str, Any]) -> Rendered:
        """(instructions, input messages, model) of a request's `prompt` reference. An
        unknown id or version, or a placeholder with no value, is a 400 naming it."""
        prompt_id = ref.get("id")
        if not isinstance(prompt_id, str) or not prompt_id:
            raise InvalidRequest("prompt needs an id.", param="prompt.id")
        version = ref.get("version")
        if version is not None and not isinstance(version, str):
            raise InvalidRequest("prompt.version must be a string.", param="prompt.version")
        try:
            found = self.get(project_id, prompt_id, version)
        except NotFound as exc:
            param = "prompt.version" if exc.param == "version" else "prompt.id"
            raise InvalidRequest(exc.message, param=param, code="prompt_not_found") from None
        given = ref.get("variables") or {}
        if not isinstance(given, dict):
            raise InvalidRequest("prompt.variables must be an object.", param="prompt.variables")
        values: dict[str, Any] = {**(found.get("variables") or {}), **given}
        for name, value in values.items():
            ok = isinstance(value, str) or (
                isinstance(value, dict) and value.get("type") in ("input_text", *MEDIA)
            )
            if not ok:
                raise InvalidRequest(
                    "A variable is a string or an input_text, input_image or input_file part.",
                    param=f"prompt.variables.{name}",
                )
        instructions = found.get("instructions")
        if instructions is not None:
            instructions = _text(instructions, values, "instructions")
        template = found.get("input") or []
        if isinstance(template, str):
            template = [{"type": "message", "role": "user", "content": template}]
        messages = [_message(m, values) for m in template]
        return Rendered(instructions, messages, found.get("model"))


def _text(text: str, values: dict[str, Any], where: str) -> str:
    def put(match: re.Match[str]) -> str:
        value = _value(match.group(1), values)
        if isinstance(value, dict) and value.get("type") in MEDIA:
            raise InvalidRequest(
                f"Variable '{match.group(1)}' is a {value['type']} part: it can stand only in "
                f"a message, not in {where}.",
                param=f"prompt.variables.{match.group(1)}",
            )
        return value if isinstance(value, str) else str(value.get("text", ""))

    return PLACEHOLDER.sub(put, text)


def _value(name: str, values: dict[str, Any]) -> Any:
    if name not in values:
        raise InvalidRequest(f"Missing prompt variable '{name}'.", param=f"prompt.variables.{name}")
    return values[name]


def _message(message: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str):
        content = [
            {
                "type": "input_text" if message.get("role") != "assistant" else "output_text",
                "text": content,
            }
        ]
    parts: list[dict[str, Any]] = []
    for part in content or []:
        if part.get("type") not in ("input_text", "output_text") or "text" not in part:
            parts.append(part)
            continue
        parts.extend(_split(part, values))
    return {**message, "content": parts}


def _split(part: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    """A text part with its placeholders filled; a media variable cuts it into text, the
    media part, and the text after."""
    out: list[dict[str, Any]] = []
    text = part["text"]
    at = 0
    pending = ""
    for match in PLACEHOLDER.finditer(text):
        value = _value(match.group(1), values)
        pending += text[at : match.start()]
        at = match.end()
        if isinstance(value, dict) and value.get("type") in MEDIA:
            if pending:
                out.append({**part, "text": pending})
            out.append(value)
            pending = ""
        else:
            pending += value if isinstance(value, str) else str(value.get("text", ""))
    pending += text[at:]
    if pending or not out:
        out.append({**part, "text": pending})
    return out
