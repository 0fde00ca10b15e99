"""The deployment files: compose.yaml parses (`docker-compose config`, which needs no engine)
and names only settings kotae has; the Dockerfile starts what the CLI offers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kotae.cli import build_parser
from kotae.config import ModelConfig, Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="no docker-compose here")
def test_compose_parses_with_two_api_replicas_a_worker_and_the_services() -> None:
    out = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    services = yaml.safe_load(out)["services"]
    assert {"api1", "api2", "worker", "lb", "postgres", "s3", "llm"} <= set(services)
    assert "--no-worker" in services["api1"]["command"]
    assert services["worker"]["command"] == ["kotae", "worker"]


def test_every_kotae_variable_in_compose_is_a_setting() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    env = compose["x-kotae"]["environment"]
    fields = {f"KOTAE_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    for model in yaml.safe_load(env["KOTAE_MODELS"]):
        ModelConfig.model_validate(model)


def test_the_commands_the_files_run_exist() -> None:
    parser = build_parser()
    parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"])
    parser.parse_args(["worker"])
    assert (
        'CMD ["kotae", "serve", "--host", "0.0.0.0", "--port", "8000"]'
        in (ROOT / "Dockerfile").read_text()
    )
