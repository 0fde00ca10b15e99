"""Object ids shaped like OpenAI's: a prefix and random hex."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from pydantic import Field

from kotae.errors import InvalidRequest


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def response_id() -> str:
    return new_id("resp")


def message_id() -> str:
    return new_id("msg")


def api_key() -> str:
    return "sk-kotae-" + secrets.token_urlsafe(32)


# Parameter name -> the prefix its ids begin with. A wrong prefix is a 400 naming the
# prefix (as OpenAI answers), not a 404.
PREFIXES = {
    "prompt_id": "pmpt_",
    "openai_batch_id": "batch_",
    "webhook_endpoint_id": "whep_",
    "container_id": "cntr_",
    "container_file_id": "cfile_",
    "response_id": "resp_",
    "conversation_id": "conv_",
    "completion_id": "chatcmpl",
    "vector_store_id": "vs_",
    "batch_id": "vsfb_",
    "upload_id": "upload_",
    "file_id": "file-",
    "fine_tuning_job_id": "ftjob-",
}


def prefix_pattern(prefix: str) -> str:
    return f"^{re.escape(prefix)}"


ID_PATTERNS = {prefix_pattern(prefix): prefix for prefix in PREFIXES.values()}


def wrong_prefix(param: str, value: object, prefix: str) -> str:
    return f"Invalid '{param}': '{value}'. Expected an ID that begins with '{prefix.rstrip('_-')}'."


def expect_prefix(value: str, prefix: str, param: str) -> str:
    if not value.startswith(prefix):
        raise InvalidRequest(wrong_prefix(param, value, prefix), param=param, code="invalid_value")
    return value


def _body_id(name: str) -> object:
    return Field(pattern=prefix_pattern(PREFIXES[name]))


# Ids in request bodies.
FileIdField = Annotated[str, _body_id("file_id")]
VectorStoreIdField = Annotated[str, _body_id("vector_store_id")]
ResponseIdField = Annotated[str, _body_id("response_id")]
