"""Path and query parameters as OpenAI shapes them. An id with the wrong prefix is a 400
naming the prefix (not a 404), and the pattern shows in /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query

from kotae.ids import PREFIXES, prefix_pattern
from kotae.schemas.responses import IncludeValue, check_includes


def _id(name: str) -> Any:
    prefix = PREFIXES[name]
    return Path(
        pattern=prefix_pattern(prefix),
        description=f"An id that begins with '{prefix}'.",
    )


ResponseId = Annotated[str, _id("response_id")]
ConversationId = Annotated[str, _id("conversation_id")]
CompletionId = Annotated[str, _id("completion_id")]
VectorStoreId = Annotated[str, _id("vector_store_id")]
BatchId = Annotated[str, _id("batch_id")]
UploadId = Annotated[str, _id("upload_id")]
FileId = Annotated[str, _id("file_id")]
JobId = Annotated[str, _id("fine_tuning_job_id")]
ContainerId = Annotated[str, _id("container_id")]
PromptId = Annotated[str, _id("prompt_id")]
OpenAIBatchId = Annotated[str, _id("openai_batch_id")]
WebhookEndpointId = Annotated[str, _id("webhook_endpoint_id")]
ContainerFileId = Annotated[str, _id("container_file_id")]

Limit = Annotated[int, Query(ge=1, le=100, description="How many objects to return (1-100).")]
# Query arrays come as `include[]=a&include[]=b` from the SDKs, or as `include=a`.
IncludeBrackets = Annotated[list[IncludeValue] | None, Query(alias="include[]")]
IncludePlain = Annotated[list[IncludeValue] | None, Query(alias="include")]


def _includes(include: IncludePlain = None, include_brackets: IncludeBrackets = None) -> list[str]:
    """Both spellings of the `include` query array, checked as a create checks its own."""
    values = [*(include or []), *(include_brackets or [])]
    check_includes(values)
    return values


Includes = Annotated[list[str], Depends(_includes)]
