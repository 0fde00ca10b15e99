"""The `kotae` command as a user runs it."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL
from tests.helpers import Server, kotae_env, new_key, run_cli


def test_first_start_prints_a_working_env(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data")
    try:
        out = srv.first_start_output()
        lines = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("OPENAI_"))
        assert lines["OPENAI_BASE_URL"] == srv.base_url
        client = OpenAI(
            base_url=lines["OPENAI_BASE_URL"], api_key=lines["OPENAI_API_KEY"], max_retries=0
        )
        assert client.responses.create(
            model=FAST_MODEL, input="x", max_output_tokens=16
        ).output_text
    finally:
        srv.stop()
    # The key is shown once: a second start does not print another.
    srv = Server(tmp_path / "data")
    try:
        assert "OPENAI_API_KEY=" not in srv.first_start_output()
    finally:
        srv.stop()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data")
    try:
        key = new_key(srv.env, "team-x")
        assert key.startswith("sk-kotae-")
        client = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
        client.models.list()
        listing = run_cli(srv.env, "keys", "list", "--project", "team-x")
        assert key not in listing  # only a redacted form is kept
        key_id = listing.split()[0]
        run_cli(srv.env, "keys", "revoke", key_id)
        assert "revoked" in run_cli(srv.env, "keys", "list", "--project", "team-x")
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    finally:
        srv.stop()


def test_models_list_and_doctor(tmp_path: Path) -> None:
    env = kotae_env(tmp_path / "data")
    listing = run_cli(env, "models", "list")
    assert "smollm2-135m-instruct (default)\tllama_cpp\tready" in listing
    assert "gpt-4o" in listing
    doctor = run_cli(env, "doctor")
    assert "[FAIL]" not in doctor
    assert "[ok] default model decodes" in doctor
    assert "[ok] llama.cpp build: no AMX" in doctor
    assert "[ok] image understanding" in doctor
    assert "[ok] fine-tuning" in doctor
    assert "kotae models pull" in doctor  # how to get an image model
