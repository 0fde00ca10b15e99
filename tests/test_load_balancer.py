"""The shipped nginx config (deploy/nginx.conf), run for real in front of two API replicas
(one without a worker): server-sent events and WebSocket turns pass through it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL
from tests.helpers import Server, free_port, new_key

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="apt-get install nginx-light")


@pytest.fixture
def balanced(tmp_path: Path) -> Iterator[tuple[str, str]]:
    data = tmp_path / "d"
    a = Server(data)
    b = Server(data, log_name="serve-b.log", worker=False)
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = conf.replace("server api1:8000;", f"server 127.0.0.1:{a.port};")
    conf = conf.replace("server api2:8000;", f"server 127.0.0.1:{b.port};")
    conf = conf.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("events {}", f"pid {tmp_path}/nginx.pid;\nevents {{}}", 1)
    conf = conf.replace(
        "http {", f"http {{\n  access_log off;\n  error_log {tmp_path}/error.log;", 1
    )
    (tmp_path / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield base + "/v1", new_key(a.env, "lb")
    finally:
        nginx.terminate()
        nginx.wait(10)
        a.stop()
        b.stop()


def test_streams_and_websockets_pass_through_nginx(balanced: tuple[str, str]) -> None:
    base_url, key = balanced
    client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    streamed = list(
        client.responses.create(model=FAST_MODEL, input="hi", max_output_tokens=16, stream=True)
    )
    assert streamed[-1].type in ("response.completed", "response.incomplete")
    ids = []
    for _ in range(2):  # least_conn spreads the sockets over both replicas
        with client.responses.connect() as conn:
            conn.response.create(
                model=FAST_MODEL,
                input="hi",
                max_output_tokens=16,
                previous_response_id=ids[-1] if ids else None,  # type: ignore[arg-type]
            )
            for event in conn:
                if event.type in ("response.completed", "response.incomplete", "error"):
                    break
            assert event.type != "error", event
            ids.append(event.response.id)  # type: ignore[union-attr]
    assert client.responses.retrieve(ids[1]).previous_response_id == ids[0]
