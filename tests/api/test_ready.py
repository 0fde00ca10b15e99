"""/ready tells the truth about storage: a server whose file storage cannot take a write is
not ready, and says why."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx

from kotae.ops.metrics import Metrics, public_name
from tests.helpers import OPS, Server, kotae_env, new_key, run_cli


def test_ready_checks_file_storage(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data")
    try:
        body = httpx.get(f"http://127.0.0.1:{srv.port}/ready", headers=OPS).json()
        assert body["checks"]["files"] == "ok" and "GB free in" in body["storage"]
        # The files folder replaced by a file: no blob can be written (root ignores modes).
        files = tmp_path / "data" / "files"
        shutil.rmtree(files)
        files.write_text("not a folder")
        r = httpx.get(f"http://127.0.0.1:{srv.port}/ready", headers=OPS)
        assert r.status_code == 503 and r.json()["status"] == "not_ready"
        assert r.json()["checks"]["files"] == "error" and r.json()["errors"]["files"]
    finally:
        srv.stop()


def test_doctor_checks_file_storage(tmp_path: Path) -> None:
    out = run_cli(kotae_env(tmp_path / "data"), "doctor")
    assert "[ok] file storage: ok, " in out


def test_ops_routes_show_no_tenant_and_no_path_without_a_key(tmp_path: Path) -> None:
    """Without a key /ready says ready or not and each engine's state, nothing more (no data
    directory, no errors, no processes); /metrics needs the metrics token once it is set."""
    srv = Server(tmp_path / "data")
    try:
        root = f"http://127.0.0.1:{srv.port}"
        open_body = httpx.get(f"{root}/ready").json()
        assert set(open_body) == {"status", "checks", "engines"}
        assert str(tmp_path) not in json.dumps(open_body)
        for info in open_body["engines"].values():
            assert set(info) == {"state"}
        detail = httpx.get(f"{root}/ready", headers=OPS).json()
        assert "GB free in" in detail["storage"]
        found = re.search(r"OPENAI_API_KEY=(\S+)", srv.first_start_output())
        assert found, "the first start prints the operator's (admin) key"
        admin = found.group(1)
        assert (
            "storage"
            in httpx.get(f"{root}/ready", headers={"Authorization": f"Bearer {admin}"}).json()
        )
        project_key = new_key(srv.env, "p")
        shown = httpx.get(f"{root}/ready", headers={"Authorization": f"Bearer {project_key}"})
        assert "storage" not in shown.json()
        refused = httpx.get(f"{root}/metrics")
        assert refused.status_code == 401 and refused.json()["error"]["message"]
        assert "kotae_requests" in httpx.get(f"{root}/metrics", headers=OPS).text
    finally:
        srv.stop()


def test_metrics_name_no_fine_tuned_model() -> None:
    name = "ft:smollm2-135m-instruct:a:secretsfx:6aYYQdX4"
    metrics = Metrics()
    metrics.watch(lambda: {name: {"state": "ready", "in_flight": 1}}, lambda: {})
    metrics.usage(name, 5, 7)
    metrics.usage("gpt-4o", 1, 1)
    text = metrics.render().decode()
    assert "secretsfx" not in text and ":a:" not in text
    assert 'model="fine-tuned-' in text and 'engine="fine-tuned-' in text
    assert 'model="gpt-4o"' in text
    assert public_name(f"Model '{name}'") == f"Model '{public_name(name)}'"
