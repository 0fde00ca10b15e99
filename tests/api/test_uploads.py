"""/v1/uploads through the SDK: parts joined into one file."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI


def test_parts_join_into_a_file(client: OpenAI) -> None:
    data = (b"0123456789" * 1000) + "日本語の行\n".encode()
    up = client.uploads.create(
        bytes=len(data), filename="big.txt", mime_type="text/plain", purpose="assistants"
    )
    assert up.status == "pending" and up.object == "upload"
    parts = [
        client.uploads.parts.create(upload_id=up.id, data=data[i : i + 4000])
        for i in range(0, len(data), 4000)
    ]
    done = client.uploads.complete(up.id, part_ids=[p.id for p in parts])
    assert done.status == "completed" and done.file is not None
    assert done.file.bytes == len(data) and done.file.filename == "big.txt"
    assert client.files.content(done.file.id).read() == data


def test_sdk_upload_file_chunked(client: OpenAI) -> None:
    data = b"x" * 3000
    up = client.uploads.upload_file_chunked(
        file=data,
        filename="c.bin",
        bytes=len(data),
        mime_type="application/octet-stream",
        purpose="user_data",
        part_size=1024,
    )
    assert up.status == "completed" and up.file is not None
    assert client.files.content(up.file.id).read() == data


def test_wrong_size_cancel_and_isolation(client: OpenAI, client_b: OpenAI) -> None:
    up = client.uploads.create(
        bytes=10, filename="a.txt", mime_type="text/plain", purpose="assistants"
    )
    part = client.uploads.parts.create(upload_id=up.id, data=b"abc")
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(up.id, part_ids=[part.id])
    with pytest.raises(openai.NotFoundError):
        client_b.uploads.cancel(up.id)
    assert client.uploads.cancel(up.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload_id=up.id, data=b"more")
