"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...), for replicas that share no
disk: `KOTAE_BLOB_URL=s3://bucket/prefix` with `KOTAE_S3_ENDPOINT_URL` and the keys (or the
usual AWS variables). An object appears whole or not at all (S3 writes are atomic; a large
one goes up in multipart parts, aborted when the write fails), so a reader never sees half a
blob and a failed write leaves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from kotae import faults
from kotae.errors import PayloadTooLarge

CHUNK = 1 << 20
PART = 8 << 20  # multipart above this size, in parts of it


class _Capped:
    """A reader that refuses to go past `limit` bytes, counting what it gave."""

    def __init__(self, source: BinaryIO, limit: int) -> None:
        self._source, self._limit, self.size = source, limit, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._source.read(n if n is not None and n >= 0 else CHUNK)
        self.size += len(chunk)
        if self.size > self._limit:
            raise PayloadTooLarge(
                f"File is over the {self._limit}-byte limit.", code="file_too_large"
            )
        return chunk


class S3BlobStore:
    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig

        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"blob_url must look like s3://bucket/prefix, not {url!r}")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region or "us-east-1",
        )
        self._transfer = TransferConfig(
            multipart_threshold=PART, multipart_chunksize=PART, use_threads=False
        )

    def _key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, source: BinaryIO, limit: int) -> int:
        capped = _Capped(source, limit)
        # A failed multipart upload is aborted by the transfer manager: nothing is left.
        self._client.upload_fileobj(capped, self.bucket, self._key(key), Config=self._transfer)
        faults.point("blob.after_write")
        return capped.size

    def read(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            while chunk := body.read(chunk_size):
                yield chunk
        finally:
            body.close()

    def read_all(self, key: str) -> bytes:
        body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        data: bytes = body.read()
        return data

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def listing(self) -> Iterator[tuple[str, float]]:
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        for page in pages:
            for obj in page.get("Contents") or []:
                yield obj["Key"][len(start) :], obj["LastModified"].timestamp()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def local_path(self, key: str) -> None:
        return None

    def check(self) -> str:
        import io

        probe = f".ready-{id(self)}"
        self._client.upload_fileobj(io.BytesIO(b"ok"), self.bucket, self._key(probe))
        self._client.delete_object(Bucket=self.bucket, Key=self._key(probe))
        return f"ok, s3://{self.bucket}/{self.prefix}"
