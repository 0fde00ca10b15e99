"""/v1/files through the SDK."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.helpers import Server, new_key, stored_blobs


def test_upload_retrieve_content_delete(client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "faq.txt"
    path.write_text("パスワードの再設定は設定画面から行います。\n")
    f = client.files.create(file=path.open("rb"), purpose="assistants")
    assert f.id.startswith("file-") and f.object == "file"
    assert f.filename == "faq.txt" and f.purpose == "assistants"
    assert f.bytes == path.stat().st_size and f.status == "processed"
    assert client.files.retrieve(f.id).filename == "faq.txt"
    assert client.files.content(f.id).read() == path.read_bytes()
    deleted = client.files.delete(f.id)
    assert deleted.deleted and deleted.id == f.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(f.id)


def test_bytes_tuple_upload_and_expiry(client: OpenAI) -> None:
    f = client.files.create(
        file=("data.jsonl", b'{"a": 1}\n'),
        purpose="fine-tune",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert f.expires_at == f.created_at + 3600


def test_list_filters_and_paginates(client: OpenAI) -> None:
    ids = [client.files.create(file=(f"p{i}.txt", b"x"), purpose="user_data").id for i in range(3)]
    listed = [f.id for f in client.files.list(purpose="user_data", limit=2)]
    assert set(ids) <= set(listed)  # auto-pagination walks every page
    page = client.files.list(purpose="user_data", limit=2, order="asc")
    assert len(page.data) == 2 and page.has_more
    assert all(f.purpose == "user_data" for f in client.files.list(purpose="user_data"))


def test_bad_purpose_and_missing_file(client: OpenAI, server: Server, key_a: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.txt", b"x"), purpose="nonsense")  # type: ignore[arg-type]
    assert err.value.body["param"] == "purpose"  # type: ignore[index]
    resp = httpx.post(
        f"{server.base_url}/files",
        data={"purpose": "assistants"},
        files={"other": ("a", b"x")},
        headers={"Authorization": f"Bearer {key_a}"},
    )
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "file"


def test_other_project_sees_nothing(client: OpenAI, client_b: OpenAI) -> None:
    f = client.files.create(file=("secret.txt", b"secret"), purpose="assistants")
    for call in (
        lambda: client_b.files.retrieve(f.id),
        lambda: client_b.files.content(f.id),
        lambda: client_b.files.delete(f.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert f.id not in [x.id for x in client_b.files.list()]
    assert client.files.retrieve(f.id).id == f.id


def test_too_large_upload_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", KOTAE_MAX_FILE_BYTES="1000")
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        # The blob store counts the bytes as it writes them and stops past the limit.
        with pytest.raises(openai.APIStatusError) as err:
            c.files.create(file=("big.bin", io.BytesIO(b"x" * 2000)), purpose="assistants")
        assert err.value.status_code == 413
        assert list(c.files.list()) == []
        assert stored_blobs(srv.env) == []
    finally:
        srv.stop()
