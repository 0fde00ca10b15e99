"""Bounded schemathesis runs against a real server: once with OpenAI's own document (the
operations kotae serves, its DIFFERENCES applied) and once with kotae's own /openapi.json.
Neither may find a server error, or an answer that breaks the schema it was judged by."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conformance import oracle
from tests.conftest import FAST_MODEL
from tests.helpers import Server, new_key

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
# CI's run is bounded; KOTAE_FUZZ_SEED and KOTAE_FUZZ_SCALE (examples x N) dig deeper on demand.
SEED = os.environ.get("KOTAE_FUZZ_SEED", "7")
SCALE = int(os.environ.get("KOTAE_FUZZ_SCALE", "1"))
pytestmark = pytest.mark.skipif(not oracle.SPEC_PATH.exists(), reason="no OpenAI spec here")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    # The tiny model answers every alias, briefly: the fuzzer sends thousands of requests.
    srv = Server(
        tmp_path_factory.mktemp("fuzz"),
        KOTAE_DEFAULT_MODEL=FAST_MODEL,
        KOTAE_MAX_OUTPUT_TOKENS_DEFAULT="24",
    )
    yield srv, new_key(srv.env, "fuzz")
    srv.stop()


def real_ids(srv: Server, key: str) -> dict[str, str]:
    """Ids of objects that exist, so that generated requests reach more than the 404."""
    c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=60)
    f = c.files.create(file=("a.txt", io.BytesIO(b"Kotae runs here.\n")), purpose="assistants")
    store = c.vector_stores.create(name="fuzz", file_ids=[f.id])
    r = c.responses.create(model=FAST_MODEL, input="Hello")
    conv = c.conversations.create(items=[{"role": "user", "content": "Hi"}])
    item = c.conversations.items.list(conv.id).data[0]
    up = c.uploads.create(bytes=3, filename="u.txt", mime_type="text/plain", purpose="assistants")
    return {
        "path.file_id": f.id,
        "path.vector_store_id": store.id,
        "path.response_id": r.id,
        "path.conversation_id": conv.id,
        "path.item_id": item.id,
        "path.upload_id": up.id,
    }


def fuzz(location: str, base_url: str, key: str, ids: dict[str, str], tmp: Path, n: int) -> str:
    config = tmp / "schemathesis.toml"
    config.write_text("[parameters]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in ids.items()))
    cmd = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        location,
        "--url",
        base_url,
        "-H",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(n * SCALE),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        SEED,
        "--workers",
        "2",
        "--request-timeout",
        "120",
        "--no-shrink",
        "--exclude-path-regex",
        "^/(health|ready)$",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp)
    report = out.stdout + out.stderr
    print(report[-3000:])
    summary = report[report.rfind("SUMMARY") :]
    # A failed check, or a request the server never answered, fails the test; a crash inside
    # schemathesis's own generator (its "Runtime Error") says nothing about kotae.
    assert "Failures:" not in summary and "Network Error" not in summary, report[-20000:]
    assert out.returncode == 0 or "Runtime Error" in summary, report[-20000:]
    assert "generated" in summary, report[-20000:]
    return report


def test_fuzzed_with_openais_spec(fuzzed: tuple[Server, str], tmp_path: Path) -> None:
    srv, key = fuzzed
    doc = tmp_path / "openai.json"
    doc.write_text(json.dumps(oracle.spec(), default=str))
    report = fuzz(str(doc), srv.base_url, key, real_ids(srv, key), tmp_path, 6)
    assert f"Tested: {len(oracle.served_operations())}" in report


def test_fuzzed_with_kotaes_own_spec(fuzzed: tuple[Server, str], tmp_path: Path) -> None:
    srv, key = fuzzed
    root = srv.base_url.removesuffix("/v1")
    served = httpx.get(f"{root}/openapi.json").json()
    count = sum(
        1
        for path, item in served["paths"].items()
        if path not in ("/health", "/ready")
        for method in item
    )
    report = fuzz(f"{root}/openapi.json", root, key, real_ids(srv, key), tmp_path, 12)
    assert f"Tested: {count}" in report
