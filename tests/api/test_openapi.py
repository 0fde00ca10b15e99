"""kotae's /openapi.json describes what the server really does: errors in the envelope (never
FastAPI's 422), forms as multipart bodies, query arrays as query parameters, limits and enums,
and the bodies of successful answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import Server


@pytest.fixture(scope="module")
def doc(server: Server) -> dict[str, Any]:
    root = server.base_url.removesuffix("/v1")
    body: dict[str, Any] = httpx.get(f"{root}/openapi.json", timeout=30).json()
    return body


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in doc["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]


def test_every_operation_declares_the_error_envelope_and_no_422(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    assert len(ops) >= 56
    envelope = {"$ref": "#/components/schemas/ErrorResponse"}
    for method, path, op in ops:
        answers = op["responses"]
        assert "422" not in answers, (method, path)
        for status in ("400", "401", "404", "429", "500", "503"):
            assert answers[status]["content"]["application/json"]["schema"] == envelope
        if method == "post":
            assert "413" in answers and "507" in answers, path
    error = doc["components"]["schemas"]["ErrorResponse"]["properties"]["error"]
    assert error["required"] == ["message", "type", "param", "code"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_answers_have_their_sdk_types(doc: dict[str, Any]) -> None:
    def ok(method: str, path: str) -> dict[str, Any]:
        body: dict[str, Any] = doc["paths"][path][method]["responses"]["200"]["content"]
        return body

    created = ok("post", "/v1/responses")
    assert created["application/json"]["schema"] == {"$ref": "#/components/schemas/Response"}
    event = created["text/event-stream"]["schema"]["properties"]["data"]
    assert event["contentSchema"] == {"$ref": "#/components/schemas/ResponseStreamEvent"}
    assert "Response" in doc["components"]["schemas"]
    for method, path, _ in operations(doc):
        assert "200" in doc["paths"][path][method]["responses"], (method, path)
        assert ok(method, path), (method, path)
    listed = ok("get", "/v1/files")["application/json"]["schema"]
    assert listed["properties"]["data"]["items"] == {"$ref": "#/components/schemas/FileObject"}
    assert "*/*" in ok("get", "/v1/files/{file_id}/content")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/files", "file"),
        ("/v1/uploads/{upload_id}/parts", "data"),
        ("/v1/images/edits", "image"),
        ("/v1/images/variations", "image"),
    ],
)
def test_forms_are_multipart_bodies(doc: dict[str, Any], path: str, field: str) -> None:
    body = doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert field in body["required"]
    assert "binary" in str(body["properties"][field])


def test_limits_enums_and_query_arrays(doc: dict[str, Any]) -> None:
    files = doc["paths"]["/v1/files"]["post"]["requestBody"]["content"]
    purpose = files["multipart/form-data"]["schema"]["properties"]["purpose"]
    assert {"assistants", "fine-tune", "user_data"} <= set(purpose["enum"])
    params = {p["name"]: p for p in doc["paths"]["/v1/vector_stores"]["get"]["parameters"]}
    assert params["limit"]["in"] == "query"
    assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (1, 100)
    retrieve = doc["paths"]["/v1/responses/{response_id}"]["get"]
    assert "requestBody" not in retrieve
    found = {p["name"]: p["in"] for p in retrieve["parameters"]}
    assert found["include"] == found["include[]"] == "query"
    assert found["response_id"] == "path"
    include = next(p for p in retrieve["parameters"] if p["name"] == "include")["schema"]
    assert "message.output_text.logprobs" in include["anyOf"][0]["items"]["enum"]
    ids = {p["name"]: p for p in retrieve["parameters"]}
    assert ids["response_id"]["schema"]["pattern"] == "^resp_"
    static = doc["components"]["schemas"]["StaticChunking"]["properties"]
    size = static["max_chunk_size_tokens"]
    assert (size["minimum"], size["maximum"]) == (100, 4096)
