"""/ready tells the truth about storage: a server whose file storage cannot take a write is
not ready, and says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.helpers import Server, kotae_env, run_cli


def test_ready_checks_file_storage(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data")
    try:
        body = httpx.get(f"http://127.0.0.1:{srv.port}/ready").json()
        assert body["checks"]["files"] == "ok" and "GB free in" in body["storage"]
        # The files folder replaced by a file: no blob can be written (root ignores modes).
        files = tmp_path / "data" / "files"
        shutil.rmtree(files)
        files.write_text("not a folder")
        r = httpx.get(f"http://127.0.0.1:{srv.port}/ready")
        assert r.status_code == 503 and r.json()["status"] == "not_ready"
        assert r.json()["checks"]["files"].startswith("error: ")
    finally:
        srv.stop()


def test_doctor_checks_file_storage(tmp_path: Path) -> None:
    out = run_cli(kotae_env(tmp_path / "data"), "doctor")
    assert "[ok] file storage: ok, " in out
