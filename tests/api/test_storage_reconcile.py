"""What a kill or an expiry leaves between the database and the blob store is found (by
`kotae doctor --check-storage`, changing nothing) and repaired by the server's sweep: orphan
blobs and unfinished writes deleted, expired uploads freed, files whose bytes are missing
marked `error`. A full disk is a 507 `storage_full` with nothing half-written."""

from __future__ import annotations

import io
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, text

from tests.helpers import Server, new_key, run_cli

SWEEP_NOW = {"KOTAE_ORPHAN_GRACE_SECONDS": "0"}


def blobs(data: Path) -> list[str]:
    root = data / "files"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def killed_at(data: Path, point: str, action: Callable[[OpenAI], object]) -> str:
    srv = Server(data, KOTAE_TEST_FAULT=point)
    key = new_key(srv.env, "p")
    c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        action(c)
    assert srv.proc.wait(timeout=30) == -signal.SIGKILL
    srv._log.close()
    return key


@pytest.mark.parametrize("point", ["blob.after_write", "files.after_blob"])
def test_blobs_a_kill_left_without_a_row_are_swept(tmp_path: Path, point: str) -> None:
    data = tmp_path / "d"
    key = killed_at(
        data, point, lambda c: c.files.create(file=("a.txt", b"x" * 5000), purpose="assistants")
    )
    left = blobs(data)
    assert len(left) == 1 and left[0].endswith(".part") == (point == "blob.after_write")
    env = Server.env_for(data, **SWEEP_NOW)
    plan = run_cli(env, "doctor", "--check-storage")
    assert ("unfinished write" if point == "blob.after_write" else "orphan blob") in plan
    assert blobs(data) == left  # the check changes nothing
    srv = Server(data, **SWEEP_NOW)
    try:
        assert blobs(data) == []
        c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
        assert c.files.list().data == []
        assert "consistent" in run_cli(env, "doctor", "--check-storage")
    finally:
        srv.stop()


def test_expired_uploads_are_freed(tmp_path: Path) -> None:
    data = tmp_path / "d"
    srv = Server(data)
    c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
    up = c.uploads.create(bytes=10, filename="a.txt", mime_type="text/plain", purpose="assistants")
    c.uploads.parts.create(upload_id=up.id, data=b"01234")
    srv.stop()
    assert len(blobs(data)) == 1
    engine = create_engine(f"sqlite:///{data / 'kotae.db'}")
    with engine.begin() as conn:  # an hour later
        conn.execute(text("UPDATE uploads SET expires_at = expires_at - 7200"))
    srv = Server(data)
    try:
        assert blobs(data) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM uploads")).scalar() == "expired"
    finally:
        srv.stop()
        engine.dispose()


def test_a_file_whose_bytes_went_missing_is_marked_not_dropped(tmp_path: Path) -> None:
    data = tmp_path / "d"
    srv = Server(data)
    key = new_key(srv.env, "p")
    c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
    f = c.files.create(file=("a.txt", b"hello"), purpose="assistants")
    srv.stop()
    (data / "files" / blobs(data)[0]).unlink()
    assert "missing blob" in run_cli(Server.env_for(data), "doctor", "--check-storage")
    srv = Server(data)
    try:
        c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
        got = c.files.retrieve(f.id)
        assert got.status == "error" and got.status_details
        with pytest.raises(openai.NotFoundError) as info:
            c.files.content(f.id)
        assert info.value.body["code"] == "file_content_missing"
    finally:
        srv.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "d"
    (data / "files").mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(data / "files")],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr!r}")
    yield data
    subprocess.run(["umount", "-l", str(data / "files")], check=False)


def test_a_full_disk_is_a_507_with_nothing_half_written(small_disk: Path) -> None:
    srv = Server(small_disk)
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            c.files.create(file=("big.bin", io.BytesIO(b"x" * 2_000_000)), purpose="assistants")
        assert info.value.status_code == 507
        assert info.value.body["code"] == "storage_full"
        assert info.value.body["type"] == "server_error"
        assert blobs(small_disk) == [] and c.files.list().data == []
        assert c.files.create(file=("small.txt", b"fits"), purpose="assistants").bytes == 4
    finally:
        srv.stop()
