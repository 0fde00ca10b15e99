"""The S3 protocol for the tests: moto's server (`moto[server]`) on loopback, started once per
test session, a bucket for each caller."""

from __future__ import annotations

import atexit
import hashlib
import socket
import subprocess
import sys
import time
import uuid

import httpx

_url: str | None = None
KEYS = {"access_key_id": "test", "secret_access_key": "test"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def available() -> bool:
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        return False
    return True


def endpoint() -> str:
    global _url
    if _url is None:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(proc.terminate)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        _url = url
    return _url


def new_bucket(name: str | None = None) -> str:
    """A bucket (named from `name`, made when missing; else a new one)."""
    import boto3

    name = f"k-{hashlib.sha1(name.encode()).hexdigest()[:20]}" if name else f"k-{uuid.uuid4().hex}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint(),
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret_access_key"],
        region_name="us-east-1",
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if name not in existing:
        client.create_bucket(Bucket=name)
    return name
