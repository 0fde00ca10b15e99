"""Request bodies of /v1/responses. Output types come from `openai.types.responses`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from kotae.errors import InvalidRequest
from kotae.ids import ResponseIdField
from kotae.schemas.common import StrictModel, Tagged, WithMetadata

# The `include` values accepted. Those for tools this server does not run are no-ops.
ACCEPTED_INCLUDES = {
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
}
# Documented as an enum; a value outside it is a 400 naming it (include[i]).
IncludeValue = Annotated[str, Field(json_schema_extra={"enum": sorted(ACCEPTED_INCLUDES)})]


def check_includes(values: Sequence[str] | None) -> None:
    for i, value in enumerate(values or []):
        if value not in ACCEPTED_INCLUDES:
            raise InvalidRequest(
                f"include value '{value}' is not supported.", param=f"include[{i}]"
            )


class InputText(StrictModel):
    type: Literal["input_text"]
    text: str


class OutputText(StrictModel):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] = Field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None


class Refusal(StrictModel):
    type: Literal["refusal"]
    refusal: str


class InputImage(StrictModel):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = "auto"


class InputFile(StrictModel):
    type: Literal["input_file"]
    file_id: str | None = None
    file_url: str | None = None
    file_data: str | None = None
    filename: str | None = None


ContentPart = Annotated[
    InputText | OutputText | Refusal | InputImage | InputFile, Field(discriminator="type")
]


class MessageItem(StrictModel):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None
    phase: Literal["commentary", "final_answer"] | None = None


class FunctionCallItem(StrictModel):
    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    arguments: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None
    namespace: str | None = None


class FunctionCallOutputItem(StrictModel):
    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[dict[str, Any]]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class CustomToolCallItem(StrictModel):
    type: Literal["custom_tool_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    input: str
    id: str | None = None
    namespace: str | None = None


class CustomToolCallOutputItem(StrictModel):
    type: Literal["custom_tool_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[dict[str, Any]]
    id: str | None = None


class SummaryText(StrictModel):
    type: Literal["summary_text"]
    text: str


class ReasoningText(StrictModel):
    type: Literal["reasoning_text"]
    text: str


class ReasoningItem(StrictModel):
    """An earlier turn's thinking, sent back (the Agents SDK and Codex do)."""

    type: Literal["reasoning"]
    id: str | None = None
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionTool(StrictModel):
    type: Literal["function"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = True


class FormatText(StrictModel):
    type: Literal["text"]


class FormatJsonObject(StrictModel):
    type: Literal["json_object"]


class FormatJsonSchema(StrictModel):
    type: Literal["json_schema"]
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    schema_: Annotated[dict[str, Any], Field(alias="schema")]
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[
    FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")
]


class TextConfig(StrictModel):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(StrictModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class StreamOptions(StrictModel):
    include_obfuscation: bool | None = None


class PromptRef(StrictModel):
    """A reusable prompt (/v1/prompts) and the values of its `{{variables}}`."""

    id: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[str, Field(max_length=16)] | None = None
    variables: dict[str, str | Tagged] | None = None


class CreateResponse(WithMetadata):
    # Optional only when `prompt` names a prompt that has a model.
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    input: str | list[Tagged] | None = None
    instructions: str | None = None
    previous_response_id: ResponseIdField | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_output_tokens: Annotated[int, Field(ge=16)] | None = None
    store: bool = True
    stream: bool = False
    stream_options: StreamOptions | None = None
    background: bool = False
    user: Annotated[str, Field(max_length=512)] | None = None
    safety_identifier: Annotated[str, Field(max_length=128)] | None = None
    prompt_cache_key: Annotated[str, Field(max_length=512)] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    text: TextConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    tools: list[Tagged] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    include: list[IncludeValue] | None = None
    reasoning: ReasoningConfig | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: PromptRef | None = None
    # Sent by agents (Codex) to label their requests; recorded nowhere.
    client_metadata: dict[str, Any] | None = None
    # Prefix caching is automatic here, so its options change nothing.
    prompt_cache_options: dict[str, Any] | None = None
    # [{"type": "compaction", "compact_threshold": N}]: compact a long thread first.
    context_management: Annotated[list[Tagged], Field(min_length=1)] | None = None
    # Real OpenAI parameters this server cannot honour: a 400 naming them, not "unknown"
    # (and left out of /openapi.json, which lists only what works).
    moderation: SkipJsonSchema[dict[str, Any] | None] = None
    image: SkipJsonSchema[dict[str, Any] | None] = None
    access_programs: SkipJsonSchema[Any] = None


class CompactResponse(StrictModel):
    """POST /v1/responses/compact."""

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: str | list[Tagged] | None = None
    instructions: str | None = None
    previous_response_id: ResponseIdField | None = None
    prompt_cache_key: Annotated[str, Field(max_length=512)] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None


class CountInputTokens(StrictModel):
    """POST /v1/responses/input_tokens: the request a create would send, counted."""

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: str | list[Tagged] | None = None
    instructions: str | None = None
    previous_response_id: ResponseIdField | None = None
    conversation: str | dict[str, Any] | None = None
    tools: list[Tagged] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    # A style hint for OpenAI's own models; it adds nothing to count here.
    personality: Any = None

    def as_create(self) -> CreateResponse:
        fields = self.model_dump(exclude_unset=True, by_alias=True, exclude={"personality"})
        return CreateResponse.model_validate(fields)
