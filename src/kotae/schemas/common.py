"""Request-model pieces shared by resources."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kotae.errors import InvalidRequest

SURROGATE = re.compile("[\ud800-\udfff]")


def _typed(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PydanticCustomError("dict_type", "Input should be a valid dictionary")
    kind = value.get("type")
    if kind is not None and not isinstance(kind, str):
        raise ValueError("'type' must be a string")
    return value


# An input item, tool or content part: an object whose `type`, when given, is a string (the
# services look types up in sets and tables, where an object is not even hashable). Kept as
# parsed, not copied: a copy of 100,000 items is ~20 MB more for each large request.
Tagged = Annotated[
    dict[str, Any],
    PlainValidator(_typed),
    WithJsonSchema({"type": "object", "additionalProperties": True}),
]


def bad_unicode_path(value: Any) -> str | None:
    """Where in a JSON value a string holds a lone surrogate (JSON's "\\ud800" escape decodes
    to one; it cannot be encoded, stored or tokenized), or None."""
    if not _holds_surrogate(value):
        return None  # the usual answer, found without a path string per value
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack.append((f"{path}.{key}" if path else str(key), key))
                stack.append((f"{path}.{key}" if path else str(key), inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
    return None


class StrictModel(BaseModel):
    """Unknown fields are a 400 naming the field, as OpenAI answers them. Types are strict:
    `"stream": "yes"` or `"max_output_tokens": 1e30` is a 400, not quietly converted (form
    fields, which are all text, are validated with strict=False)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        path = bad_unicode_path(data)
        if path is not None:
            raise InvalidRequest(
                f"Invalid value for '{path}': the text is not valid Unicode (it holds a lone "
                "surrogate such as \\ud800).",
                param=path or None,
                code="invalid_value",
            )
        return data


def _holds_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


Metadata = Annotated[dict[str, str], Field(max_length=16)]


def check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError("metadata keys may be at most 64 characters")
        if len(item) > 512:
            raise ValueError("metadata values may be at most 512 characters")
    return value


class WithMetadata(StrictModel):
    metadata: Metadata | None = None

    _check_metadata = field_validator("metadata")(check_metadata)
