"""Inputs are bounded before they cost anything: embeddings' per-input and per-request limits,
text too long for the context window, invalid Unicode — each a 400, with the server's memory
flat and its event loop free."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL
from tests.helpers import OPS, Server, new_key, wait_until

TEN_MB = "a " * (5 * 1024 * 1024)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_10_mb_embeddings_input_is_refused_with_memory_flat(
    server: Server, client: OpenAI
) -> None:
    client.embeddings.create(model="text-embedding-3-small", input="warm up the encoder")
    before = rss_kib(server.proc.pid)
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="text-embedding-3-small", input=TEN_MB)
    after = rss_kib(server.proc.pid)
    body = info.value.response.json()["error"]
    assert body["param"] == "input" and body["code"] == "context_length_exceeded"
    # Measured: the body itself passes through (parsed once), the encoder never sees it.
    # Before the limit this grew the server by ~20 GB.
    assert after - before < 150 * 1024, (before, after)


def test_embeddings_limits_per_input_and_per_request(client: OpenAI) -> None:
    words = " ".join(f"w{i}" for i in range(9000))  # 9,000 tokens: over 8,192
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="text-embedding-3-small", input=["ok", words])
    assert info.value.response.json()["error"]["param"] == "input[1]"
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="text-embedding-3-small", input=["x"] * 2049)
    assert info.value.response.json()["error"]["param"] == "input"
    near = " ".join(f"w{i}" for i in range(8000))
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="text-embedding-3-small", input=[near] * 40)  # 320k
    assert info.value.response.json()["error"]["code"] == "max_tokens_per_request"
    fits = client.embeddings.create(model="text-embedding-3-small", input=[near])
    assert fits.usage.prompt_tokens == 8000


@pytest.mark.parametrize(
    "path,body",
    [
        ("/responses", {"model": FAST_MODEL, "input": "\ud800"}),
        ("/responses", {"model": FAST_MODEL, "input": [{"role": "user", "content": "a\udfffb"}]}),
        (
            "/chat/completions",
            {"model": FAST_MODEL, "messages": [{"role": "user", "content": "\ud800"}]},
        ),
        ("/embeddings", {"model": "text-embedding-3-small", "input": ["ok", "\ud800"]}),
    ],
)
def test_invalid_unicode_is_a_400_naming_the_field(
    server: Server, key_a: str, path: str, body: dict[str, Any]
) -> None:
    r = httpx.post(
        server.base_url + path,
        content=json.dumps(body),  # ASCII JSON: the lone surrogate as its \\ud800 escape
        headers={"Authorization": f"Bearer {key_a}", "Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and "Unicode" in error["message"]
    assert error["param"] and error["param"].split(".")[0].split("[")[0] in ("input", "messages")


def test_text_far_over_the_window_is_refused_without_tokenizing(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-4o", input=TEN_MB[: 5 * 1024 * 1024])
    error = info.value.response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "input"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": TEN_MB[: 5 * 1024 * 1024]}]
        )
    assert info.value.response.json()["error"]["param"] == "messages"


def test_the_event_loop_answers_while_the_first_image_loads_its_models(tmp_path: Path) -> None:
    """The first image request starts the perception runner (torch, EfficientNet, OCR: seconds);
    /health is answered meanwhile."""
    srv = Server(tmp_path / "d")
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0, timeout=300)
        picture = (Path(__file__).parent.parent / "data" / "chelsea.jpg").read_bytes()
        url = "data:image/jpeg;base64," + base64.b64encode(picture).decode()
        done = threading.Event()
        answered_during: list[bool] = []

        def ask() -> None:
            c.responses.create(
                model=FAST_MODEL,
                max_output_tokens=16,
                input=[{"role": "user", "content": [{"type": "input_image", "image_url": url}]}],
            )
            done.set()

        asking = threading.Thread(target=ask)
        asking.start()
        wait_until(
            lambda: (
                "perception"
                in httpx.get(f"http://127.0.0.1:{srv.port}/ready", headers=OPS).json()["engines"]
            ),
            60,
            "the perception runner starts",
        )
        health = httpx.get(f"http://127.0.0.1:{srv.port}/health", timeout=60)
        answered_during.append(not done.is_set())
        asking.join(300)
        assert health.status_code == 200 and done.is_set()
        assert answered_during == [True]
    finally:
        srv.stop()
