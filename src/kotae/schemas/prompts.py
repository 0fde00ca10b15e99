"""Request bodies of kotae's /v1/prompts (OpenAI keeps prompts in its dashboard)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from kotae.schemas.common import StrictModel, Tagged


class PromptVersionBody(StrictModel):
    """A prompt's content: instructions and/or input messages, with `{{name}}` placeholders."""

    name: Annotated[str, Field(max_length=256)] | None = None
    instructions: Annotated[str, Field(max_length=256_000)] | None = None
    input: str | Annotated[list[Tagged], Field(max_length=256)] | None = None
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    variables: Annotated[dict[str, str], Field(max_length=64)] | None = None

    @model_validator(mode="after")
    def _has_content(self) -> PromptVersionBody:
        if not self.instructions and not self.input:
            raise ValueError("a prompt needs instructions or input")
        return self


def body_of(req: PromptVersionBody) -> dict[str, Any]:
    return req.model_dump(exclude_none=True)
