"""The blob store contract, run over every implementation: local disk (the default) and S3
(moto's server speaking the protocol on loopback)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from kotae.errors import PayloadTooLarge
from kotae.providers.blobs.base import BlobStore
from kotae.providers.blobs.local import LocalBlobStore
from tests import s3

Factory = Callable[[Path], BlobStore]


def s3_store(_: Path) -> BlobStore:
    from kotae.providers.blobs.s3 import S3BlobStore

    return S3BlobStore(f"s3://{s3.new_bucket()}/kotae", endpoint_url=s3.endpoint(), **s3.KEYS)


FACTORIES: dict[str, Factory] = {
    "local": lambda p: LocalBlobStore(p / "blobs"),
    **({"s3": s3_store} if s3.available() else {}),
}


@pytest.fixture(params=sorted(FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return FACTORIES[request.param](tmp_path)


def test_put_read_list_delete(store: BlobStore) -> None:
    assert store.put("p/files/a", io.BytesIO(b"hello"), 100) == 5
    assert store.read_all("p/files/a") == b"hello"
    assert b"".join(store.read("p/files/a", 2)) == b"hello"
    assert store.exists("p/files/a") and not store.exists("p/files/b")
    assert [k for k, _ in store.listing()] == ["p/files/a"]
    store.delete("p/files/a")
    assert not store.exists("p/files/a") and list(store.listing()) == []
    store.delete("p/files/a")  # deleting what is gone is fine
    assert store.check().startswith("ok")


def test_over_the_limit_raises_and_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(PayloadTooLarge):
        store.put("p/files/big", io.BytesIO(b"x" * 1000), 999)
    assert not store.exists("p/files/big") and list(store.listing()) == []
    # Large enough for multipart parts on S3: over the limit in a later part, also nothing.
    with pytest.raises(PayloadTooLarge):
        store.put("p/files/huge", io.BytesIO(b"y" * (20 << 20)), 17 << 20)
    assert list(store.listing()) == []
    client = getattr(store, "_client", None)
    if client is not None:  # S3: the multipart upload was aborted, not left open
        uploads = client.list_multipart_uploads(Bucket=store.bucket)  # type: ignore[attr-defined]
        assert not uploads.get("Uploads")


def test_a_large_blob_round_trips(store: BlobStore) -> None:
    data = bytes(range(256)) * (80 << 12)  # 20 MiB: several multipart parts on S3
    assert store.put("p/files/large", io.BytesIO(data), 1 << 30) == len(data)
    assert b"".join(store.read("p/files/large")) == data


def test_keys_cannot_escape(store: BlobStore) -> None:
    with pytest.raises(ValueError):
        store.put("../outside", io.BytesIO(b"x"), 10)
