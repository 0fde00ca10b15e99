"""What a request with a wrong type, a wrong id or a broken body gets: a 400 (or 413) that names
the parameter as OpenAI does, and nothing changes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL
from tests.helpers import Server, new_key


@pytest.fixture
def http(server: Server, key_a: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key_a}"}, timeout=60
    ) as c:
        yield c


def error(resp: httpx.Response, status: int = 400) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    return dict(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream", "yes"),
        ("store", "no"),
        ("background", 1),
        ("max_output_tokens", 1e30),
        ("max_output_tokens", 64.0),
        ("temperature", "0.5"),
        ("top_logprobs", "3"),
    ],
)
def test_wrong_json_types_are_not_converted(http: httpx.Client, field: str, value: object) -> None:
    resp = http.post("/responses", json={"model": FAST_MODEL, "input": "x", field: value})
    assert error(resp)["param"] == field


def test_a_number_as_input_names_input(http: httpx.Client) -> None:
    assert error(http.post("/responses", json={"model": FAST_MODEL, "input": 42}))["param"] == (
        "input"
    )


def test_truncated_json_names_no_parameter(http: httpx.Client) -> None:
    body = b'{"model": "' + FAST_MODEL.encode() + b'", "input": "hel'
    resp = http.post("/responses", content=body, headers={"Content-Type": "application/json"})
    err = error(resp)
    assert err["param"] is None
    assert "parse the JSON body" in str(err["message"])


@pytest.mark.parametrize(
    ("method", "path", "param", "prefix"),
    [
        ("GET", "/responses/abc", "response_id", "resp"),
        ("POST", "/responses/abc/cancel", "response_id", "resp"),
        ("GET", "/responses/abc/input_items", "response_id", "resp"),
        ("GET", "/conversations/abc", "conversation_id", "conv"),
        ("GET", "/conversations/abc/items", "conversation_id", "conv"),
        ("GET", "/vector_stores/abc", "vector_store_id", "vs"),
        ("GET", "/vector_stores/abc/files", "vector_store_id", "vs"),
        ("GET", "/files/abc", "file_id", "file"),
        ("DELETE", "/files/abc", "file_id", "file"),
        ("POST", "/uploads/abc/cancel", "upload_id", "upload"),
        ("GET", "/fine_tuning/jobs/abc", "fine_tuning_job_id", "ftjob"),
        ("GET", "/fine_tuning/jobs/abc/events", "fine_tuning_job_id", "ftjob"),
    ],
)
def test_an_id_with_the_wrong_prefix_is_400_naming_the_prefix(
    http: httpx.Client, method: str, path: str, param: str, prefix: str
) -> None:
    err = error(http.request(method, path))
    assert err["param"] == param
    assert (
        err["message"] == f"Invalid '{param}': 'abc'. Expected an ID that begins with '{prefix}'."
    )


def test_body_ids_with_the_wrong_prefix_are_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input="x", conversation="no-conv-prefix")
    assert err.value.body["param"] == "conversation"
    assert "begins with 'conv'" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=FAST_MODEL, input="x", previous_response_id="nope")
    assert err.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model=FAST_MODEL,
            input="x",
            tools=[{"type": "file_search", "vector_store_ids": ["store-1"]}],
        )
    assert err.value.body["param"] == "tools[0].vector_store_ids"
    store = client.vector_stores.create(name="prefix checks")
    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.files.create(vector_store_id=store.id, file_id="nope")
    assert err.value.body["param"] == "file_id"
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model=FAST_MODEL, training_file="nope")
    assert err.value.body["param"] == "training_file"
    # A well-formed id that does not exist is still a 404.
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_" + "0" * 48)


def test_empty_uploads_are_refused_and_stored_nowhere(client: OpenAI) -> None:
    before = {f.id for f in client.files.list()}
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("empty.txt", io.BytesIO(b"")), purpose="assistants")
    assert err.value.body["param"] == "file"
    assert {f.id for f in client.files.list()} == before
    upload = client.uploads.create(
        bytes=3, filename="a.txt", mime_type="text/plain", purpose="assistants"
    )
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.parts.create(upload_id=upload.id, data=b"")
    assert err.value.body["param"] == "data"
    client.uploads.cancel(upload.id)


def test_a_chunked_body_over_the_limit_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "x", "input": "'
        for _ in range(40):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    resp = http.post("/responses", content=chunks(), headers={"Content-Type": "application/json"})
    assert error(resp, 413)["code"] == "request_too_large"


def test_a_chunked_upload_over_the_limit_is_413(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", KOTAE_MAX_FILE_BYTES=str(1024 * 1024))
    try:
        key = new_key(srv.env, "small")
        boundary = "kotaeboundary"

        def chunks() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
                f'assistants\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n'
            ).encode()
            for _ in range(4):
                yield b"y" * (1024 * 1024)
            yield f"\r\n--{boundary}--\r\n".encode()

        resp = httpx.post(
            f"{srv.base_url}/files",
            content=chunks(),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
            timeout=60,
        )
        assert error(resp, 413)["code"] == "request_too_large"
        listed = httpx.get(f"{srv.base_url}/files", headers={"Authorization": f"Bearer {key}"})
        assert listed.json()["data"] == []
    finally:
        srv.stop()


def test_405_says_which_methods_are_allowed(http: httpx.Client) -> None:
    resp = http.put("/responses")
    assert error(resp, 405)["type"] == "invalid_request_error"
    assert resp.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/responses/resp_x", "/responses/resp_x/input_items"])
def test_include_is_a_query_parameter(http: httpx.Client, path: str) -> None:
    # An unknown include value is named, so ?include[]= is read (it used to be ignored).
    for key in ("include[]", "include"):
        err = error(http.get(path, params={key: "bogus.value"}))
        assert err["param"] == "include[0]"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        # Each was a 500 (found by the fuzzer): an object where a type name belongs.
        ("/conversations", {"items": [{"type": {}, "call_id": "0"}]}, "items[0]"),
        ("/responses", {"model": FAST_MODEL, "input": [{"type": {}}]}, "input[0]"),
        ("/responses", {"model": FAST_MODEL, "input": "x", "tools": [{"type": []}]}, "tools[0]"),
        (
            "/chat/completions",
            {"model": FAST_MODEL, "messages": [{"role": "user", "content": [{"type": {}}]}]},
            "messages[0].content[0]",
        ),
        # And a null item id, which reached the database.
        (
            "/conversations",
            {"items": [{"type": "apply_patch_call_output", "id": None, "call_id": "0"}]},
            None,
        ),
        ("/conversations", {"items": [{"role": "user", "content": "x", "id": 5}]}, "items[0].id"),
    ],
)
def test_malformed_items_are_400_not_500(
    http: httpx.Client, path: str, body: dict[str, object], param: str | None
) -> None:
    resp = http.post(path, json=body)
    if param is None:  # a null id is no id: the server makes one
        assert resp.status_code == 200, resp.text
        item = resp.json()
        assert item["id"].startswith("conv_")
        listed = http.get(f"/conversations/{item['id']}/items").json()["data"]
        assert listed[0]["id"] and listed[0]["status"] == "completed"
        return
    assert error(resp)["param"] == param


def test_a_filter_type_must_be_a_name(client: OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create(name="filters")
    body = {"query": "x", "filters": {"key": "k", "type": {}, "value": False}}
    assert error(http.post(f"/vector_stores/{store.id}/search", json=body))["param"] == (
        "filters.type"
    )


@pytest.mark.parametrize(
    "attributes",
    [{"k" * 65: "v"}, {"k": "v" * 513}, {f"k{i}": "v" for i in range(17)}],
)
def test_attributes_keep_openais_limits(
    client: OpenAI, http: httpx.Client, attributes: dict[str, str]
) -> None:
    f = client.files.create(file=("a.txt", io.BytesIO(b"attributes")), purpose="assistants")
    store = client.vector_stores.create(name="attributes")
    body = {"file_id": f.id, "attributes": attributes}
    err = error(http.post(f"/vector_stores/{store.id}/files", json=body))
    assert str(err["param"]).startswith("attributes")
    assert client.vector_stores.files.list(store.id).data == []


def test_an_evals_file_leaves_the_file_list_working(client: OpenAI) -> None:
    # The SDK's FileObject type has no "evals" purpose: building the answer from it used to
    # fail after the row was written, and then every list of the project's files was a 400.
    f = client.files.create(file=("e.jsonl", io.BytesIO(b'{"item": 1}\n')), purpose="evals")
    assert f.purpose == "evals"
    assert f.id in {x.id for x in client.files.list()}
    assert client.files.retrieve(f.id).purpose == "evals"


def test_upload_purposes_are_checked_like_files(http: httpx.Client) -> None:
    body = {"filename": "a.txt", "purpose": "", "bytes": 1, "mime_type": "text/plain"}
    assert error(http.post("/uploads", json=body))["param"] == "purpose"
