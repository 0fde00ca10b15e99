"""kotae's own /openapi.json, made to tell the truth: the error envelope on every status the
server answers (never FastAPI's 422), the JSON bodies of successful answers as the SDK's own
types describe them, and the multipart bodies of the routes that read forms themselves."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from openai.types import (
    CreateEmbeddingResponse,
    FileDeleted,
    FileObject,
    ImagesResponse,
    Model,
    ModelDeleted,
    Upload,
    VectorStore,
    VectorStoreDeleted,
    VectorStoreSearchResponse,
)
from openai.types.chat import ChatCompletion
from openai.types.conversations import Conversation, ConversationDeletedResource
from openai.types.conversations.conversation_item import ConversationItem
from openai.types.conversations.conversation_item_list import ConversationItemList
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint
from openai.types.responses import (
    Response,
    ResponseCompactionItem,
    ResponseInputMessageItem,
    ResponseItemList,
    ResponseUsage,
)
from openai.types.responses import ResponseStreamEvent as Event
from openai.types.responses.input_token_count_response import InputTokenCountResponse
from openai.types.uploads import UploadPart
from openai.types.vector_stores import (
    FileContentResponse,
    VectorStoreFile,
    VectorStoreFileBatch,
    VectorStoreFileDeleted,
)
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from kotae.services.files import PURPOSES

REF = "#/components/schemas/{model}"

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

# Every operation can answer these; writes also 413 (body too large) and 507 (disk full).
ERRORS = {
    "400": "Invalid request: the message names the parameter.",
    "401": "Missing or invalid API key.",
    "404": "No such object in this key's project (or no such model).",
    "429": "The model's queue is full; retry shortly.",
    "500": "Unexpected server error.",
    "502": "A remote engine failed.",
    "503": "The model's engine crashed or could not start (code engine_crashed or "
    "engine_unavailable).",
}
WRITE_ERRORS = {
    "413": "The request body is over the server's limit.",
    "507": "The disk or database is full; nothing was kept.",
}


def _list(item: str, *, paged: bool = True) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data", "has_more"] if paged else ["object", "data"],
        "properties": {
            "object": {"type": "string", "const": "list"},
            "data": {"type": "array", "items": {"$ref": REF.format(model=item)}},
            "first_id": {"type": ["string", "null"]},
            "last_id": {"type": ["string", "null"]},
            "has_more": {"type": "boolean"},
        },
    }


def _deleted(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "object", "deleted"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "const": kind},
            "deleted": {"type": "boolean"},
        },
    }


SEARCH_PAGE = {
    "type": "object",
    "required": ["object", "search_query", "data", "has_more", "next_page"],
    "properties": {
        "object": {"type": "string", "const": "vector_store.search_results.page"},
        "search_query": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"$ref": REF.format(model="VectorStoreSearchResponse")}},
        "has_more": {"type": "boolean"},
        "next_page": {"type": ["string", "null"]},
    },
}
CONTENT_PAGE = {
    "type": "object",
    "required": ["object", "data", "has_more", "next_page"],
    "properties": {
        "object": {"type": "string", "const": "vector_store.file_content.page"},
        "data": {"type": "array", "items": {"$ref": REF.format(model="FileContentResponse")}},
        "has_more": {"type": "boolean"},
        "next_page": {"type": ["string", "null"]},
    },
}

# (method, path) -> the model of a 200 answer, or a JSON schema built here.
BODIES: dict[tuple[str, str], type[BaseModel] | dict[str, Any]] = {
    ("post", "/v1/responses"): Response,
    ("post", "/v1/responses/compact"): {
        "type": "object",
        "required": ["id", "object", "created_at", "output", "usage"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "const": "response.compaction"},
            "created_at": {"type": "integer"},
            # The thread's user messages, word for word, then the compaction.
            "output": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"$ref": REF.format(model="ResponseInputMessageItem")},
                        {"$ref": REF.format(model="ResponseCompactionItem")},
                    ]
                },
            },
            "usage": {"$ref": REF.format(model="ResponseUsage")},
        },
    },
    ("post", "/v1/responses/input_tokens"): InputTokenCountResponse,
    ("get", "/v1/responses/{response_id}"): Response,
    ("delete", "/v1/responses/{response_id}"): _deleted("response.deleted"),
    ("post", "/v1/responses/{response_id}/cancel"): Response,
    ("get", "/v1/responses/{response_id}/input_items"): ResponseItemList,
    ("get", "/v1/responses"): _list("Response"),
    ("post", "/v1/chat/completions"): ChatCompletion,
    ("post", "/v1/embeddings"): CreateEmbeddingResponse,
    ("post", "/v1/files"): FileObject,
    ("get", "/v1/files"): _list("FileObject"),
    ("get", "/v1/files/{file_id}"): FileObject,
    ("delete", "/v1/files/{file_id}"): FileDeleted,
    ("post", "/v1/uploads"): Upload,
    ("post", "/v1/uploads/{upload_id}/parts"): UploadPart,
    ("post", "/v1/uploads/{upload_id}/complete"): Upload,
    ("post", "/v1/uploads/{upload_id}/cancel"): Upload,
    ("post", "/v1/vector_stores"): VectorStore,
    ("get", "/v1/vector_stores"): _list("VectorStore"),
    ("get", "/v1/vector_stores/{vector_store_id}"): VectorStore,
    ("post", "/v1/vector_stores/{vector_store_id}"): VectorStore,
    ("delete", "/v1/vector_stores/{vector_store_id}"): VectorStoreDeleted,
    ("post", "/v1/vector_stores/{vector_store_id}/search"): SEARCH_PAGE,
    ("post", "/v1/vector_stores/{vector_store_id}/files"): VectorStoreFile,
    ("get", "/v1/vector_stores/{vector_store_id}/files"): _list("VectorStoreFile"),
    ("get", "/v1/vector_stores/{vector_store_id}/files/{file_id}"): VectorStoreFile,
    ("post", "/v1/vector_stores/{vector_store_id}/files/{file_id}"): VectorStoreFile,
    ("delete", "/v1/vector_stores/{vector_store_id}/files/{file_id}"): VectorStoreFileDeleted,
    ("get", "/v1/vector_stores/{vector_store_id}/files/{file_id}/content"): CONTENT_PAGE,
    ("post", "/v1/vector_stores/{vector_store_id}/file_batches"): VectorStoreFileBatch,
    ("get", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}"): VectorStoreFileBatch,
    (
        "post",
        "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
    ): VectorStoreFileBatch,
    ("get", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files"): _list(
        "VectorStoreFile"
    ),
    ("post", "/v1/conversations"): Conversation,
    ("get", "/v1/conversations/{conversation_id}"): Conversation,
    ("post", "/v1/conversations/{conversation_id}"): Conversation,
    ("delete", "/v1/conversations/{conversation_id}"): ConversationDeletedResource,
    ("get", "/v1/conversations/{conversation_id}/items"): ConversationItemList,
    ("post", "/v1/conversations/{conversation_id}/items"): ConversationItemList,
    ("get", "/v1/conversations/{conversation_id}/items/{item_id}"): {
        "$ref": REF.format(model="ConversationItem")
    },
    ("delete", "/v1/conversations/{conversation_id}/items/{item_id}"): Conversation,
    ("post", "/v1/fine_tuning/jobs"): FineTuningJob,
    ("get", "/v1/fine_tuning/jobs"): _list("FineTuningJob"),
    ("get", "/v1/fine_tuning/jobs/{fine_tuning_job_id}"): FineTuningJob,
    ("post", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel"): FineTuningJob,
    ("get", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/events"): _list("FineTuningJobEvent"),
    ("get", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints"): _list(
        "FineTuningJobCheckpoint"
    ),
    ("post", "/v1/images/generations"): ImagesResponse,
    ("post", "/v1/images/edits"): ImagesResponse,
    ("post", "/v1/images/variations"): ImagesResponse,
    ("get", "/v1/models"): _list("Model", paged=False),
    ("get", "/v1/models/{model_id}"): Model,
    ("delete", "/v1/models/{model_id}"): ModelDeleted,
}
# Types only named inside the lists above.
LISTED: list[type[BaseModel]] = [
    FileObject,
    VectorStore,
    VectorStoreSearchResponse,
    VectorStoreFile,
    FileContentResponse,
    FineTuningJob,
    FineTuningJobEvent,
    FineTuningJobCheckpoint,
    Model,
    ResponseInputMessageItem,
    ResponseCompactionItem,
    ResponseUsage,
]
# Answers that are not JSON, and errors only some operations answer.
RAW = {("get", "/v1/files/{file_id}/content")}
ADMIN_ONLY = {"403": "Needs an admin key (code admin_key_required)."}
MORE_ERRORS = {
    ("delete", "/v1/models/{model_id}"): {
        "403": "Only a project's own fine-tuned models can be deleted."
    },
    ("get", "/v1/organization/projects"): ADMIN_ONLY,
    ("post", "/v1/organization/projects"): {
        **ADMIN_ONLY,
        "409": "A project of that name exists.",
    },
    ("get", "/v1/organization/projects/{project_id}"): ADMIN_ONLY,
    ("get", "/v1/organization/projects/{project_id}/api_keys"): ADMIN_ONLY,
    ("post", "/v1/organization/projects/{project_id}/api_keys"): ADMIN_ONLY,
    ("delete", "/v1/organization/projects/{project_id}/api_keys/{key_id}"): ADMIN_ONLY,
}
STREAMED = {("post", "/v1/responses"), ("get", "/v1/responses/{response_id}")}
STREAMED_CHAT = {("post", "/v1/chat/completions")}


def _event(payload: str | None) -> dict[str, Any]:
    """One server-sent event; its data is a JSON `payload` (chat streams end with [DONE])."""
    data: dict[str, Any] = {"type": "string", "contentMediaType": "application/json"}
    if payload is None:
        data["description"] = "A chat.completion.chunk as JSON; the last event's data is [DONE]."
    else:
        data["contentSchema"] = _ref_to(payload)
    return {
        "type": "object",
        "required": ["data"],
        "properties": {"event": {"type": "string"}, "data": data},
    }


def _ref_to(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def _binary(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "binary", "description": description}


def _image_form(options: dict[str, Any], edit: bool) -> dict[str, Any]:
    image = _binary("A PNG, JPEG or WebP picture.")
    props = {
        "image": {"anyOf": [image, {"type": "array", "items": image, "maxItems": 16}]}
        if edit
        else image,
        **(options.get("properties") or {}),
    }
    if edit:
        props["mask"] = _binary("A PNG whose transparent pixels mark what to change.")
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", *(options.get("required") or [])],
                    "properties": props,
                }
            }
        },
    }


def multipart_bodies(components: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The forms that routes parse themselves (FastAPI cannot see them)."""
    from kotae.schemas.images import EditImage, ImageVariation

    def options(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        return schema

    return {
        ("post", "/v1/files"): {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "purpose"],
                        "properties": {
                            "file": _binary("The file's bytes (not empty)."),
                            "purpose": {"type": "string", "enum": sorted(PURPOSES)},
                            "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
                            "expires_after[seconds]": {
                                "type": "integer",
                                "minimum": 3600,
                                "maximum": 2592000,
                            },
                        },
                    }
                }
            },
        },
        ("post", "/v1/uploads/{upload_id}/parts"): {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {"data": _binary("One part's bytes (not empty).")},
                    }
                }
            },
        },
        ("post", "/v1/images/edits"): _image_form(options(EditImage), edit=True),
        ("post", "/v1/images/variations"): _image_form(options(ImageVariation), edit=False),
    }


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    # FastAPI's 422 shapes are never sent: validation errors are 400s in the envelope.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ErrorResponse"] = ERROR
    models = {m for m in BODIES.values() if isinstance(m, type)} | set(LISTED)
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, defs = models_json_schema([(m, "serialization") for m in ordered], ref_template=REF)
    found = dict(defs.get("$defs", {}))
    # Pydantic qualifies a name two SDK classes share; the answers' own types keep theirs.
    wanted = {refs[(m, "serialization")]["$ref"].rsplit("/", 1)[-1]: m.__name__ for m in ordered}
    # Unions, not classes: their schemas are made on their own.
    unions: list[tuple[str, Any]] = [
        ("ConversationItem", ConversationItem),
        ("ResponseStreamEvent", Event),
    ]
    for name, union in unions:
        made = TypeAdapter(union).json_schema(mode="serialization", ref_template=REF)
        found.update(made.pop("$defs", {}))
        found[name] = made
    components.update(_renamed(found, components, wanted))
    # The SDK's file type lags the API: a file uploaded for evals says so.
    purpose = components["FileObject"]["properties"]["purpose"]
    purpose["enum"] = [*purpose["enum"], "evals"]
    for name in ("ConversationItemList", "ResponseItemList"):
        # An empty page has no first or last id: null, as OpenAI answers.
        for end in ("first_id", "last_id"):
            components[name]["properties"][end] = {"type": ["string", "null"]}
    forms = multipart_bodies(components)
    for path, item in schema["paths"].items():
        for method, op in item.items():
            key = (method, path)
            answers = op.setdefault("responses", {})
            answers.pop("422", None)
            body = BODIES.get(key)
            if body is not None:
                ok = body if isinstance(body, dict) else _ref_to(body.__name__)
                content: dict[str, Any] = {"application/json": {"schema": ok}}
                if key in STREAMED:
                    content["text/event-stream"] = {"schema": _event("ResponseStreamEvent")}
                if key in STREAMED_CHAT:
                    content["text/event-stream"] = {"schema": _event(None)}
                answers["200"] = {"description": "Successful Response", "content": content}
            if key in RAW:
                answers["200"] = {
                    "description": "The file's bytes, with its media type.",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                }
            if key in forms:
                op["requestBody"] = forms[key]
            statuses = dict(ERRORS)
            if method == "post":
                statuses.update(WRITE_ERRORS)
            statuses.update(MORE_ERRORS.get(key, {}))
            for status, text in statuses.items():
                answers.setdefault(
                    status,
                    {
                        "description": text,
                        "content": {"application/json": {"schema": _ref_to("ErrorResponse")}},
                    },
                )
    return schema


def _renamed(
    found: dict[str, Any], taken: dict[str, Any], wanted: dict[str, str]
) -> dict[str, Any]:
    """The SDK's schemas under the `wanted` names, and renamed where kotae's request bodies
    use a name already."""
    names = {name: wanted[name] for name in found if name in wanted}
    used = set(taken) | set(names.values())
    for name in found:
        if name in names:
            continue
        new = name
        while new in used:
            new += "Output"
        names[name] = new
        used.add(new)

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: fix(v) for k, v in value.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF.format(model="")):
                out["$ref"] = REF.format(model=names.get(ref.rsplit("/", 1)[-1], ref))
            return out
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    return {names[name]: fix(schema) for name, schema in found.items()}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
