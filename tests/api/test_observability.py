"""What an operator sees: a request id on every answer, a log line that says why a request
failed (text or JSON), and Prometheus metrics of requests, tokens, engines and jobs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL
from tests.helpers import OPS, Server, new_key, wait_until


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("ops"), log_level="info", KOTAE_LOG_FORMAT="json")
    yield srv
    srv.stop()


def log_lines(srv: Server) -> list[dict[str, object]]:
    lines = srv.log_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_every_answer_carries_a_request_id(logged: Server) -> None:
    key = new_key(logged.env, "ops")
    auth = {"Authorization": f"Bearer {key}"}
    ok = httpx.get(f"{logged.base_url}/models", headers=auth)
    assert re.fullmatch(r"req_[0-9a-f]{24}", ok.headers["x-request-id"])
    missing = httpx.get(f"{logged.base_url}/files/file-nothing", headers=auth)
    assert missing.status_code == 404 and missing.headers["x-request-id"].startswith("req_")
    # A proxy's id is kept, so one id follows the request through both logs.
    mine = httpx.get(f"{logged.base_url}/models", headers={**auth, "x-request-id": "lb-42"})
    assert mine.headers["x-request-id"] == "lb-42"
    assert httpx.get(f"{logged.base_url}/models").headers["x-request-id"]  # 401 too


def test_the_log_says_why_a_request_failed(logged: Server) -> None:
    key = new_key(logged.env, "ops-log")
    resp = httpx.post(
        f"{logged.base_url}/responses",
        json={"model": FAST_MODEL, "input": "x", "temperature": 9},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 400
    rid = resp.headers["x-request-id"]

    def logged_line() -> dict[str, object] | None:
        return next((line for line in log_lines(logged) if line["request_id"] == rid), None)

    wait_until(lambda: logged_line() is not None, 10, "the request's log line")
    line = logged_line()
    assert line is not None
    assert line["status"] == 400 and line["path"] == "/v1/responses"
    assert line["param"] == "temperature" and line["error_type"] == "invalid_request_error"
    assert "temperature" in str(line["message"])


def test_text_logs_name_the_request_and_the_reason(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", log_level="info")
    try:
        rid = httpx.get(f"{srv.base_url}/models").headers["x-request-id"]
        wait_until(lambda: rid in srv.log_path.read_text(), 10, "the request's log line")
        line = next(x for x in srv.log_path.read_text().splitlines() if rid in x)
        assert "GET /v1/models 401" in line and "invalid_request_error" in line
    finally:
        srv.stop()


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in /metrics")


def test_metrics_count_requests_tokens_engines_and_jobs(logged: Server) -> None:
    key = new_key(logged.env, "ops-metrics")
    c = OpenAI(base_url=logged.base_url, api_key=key, max_retries=0, timeout=120)
    root = logged.base_url.removesuffix("/v1")
    before = httpx.get(f"{root}/metrics", headers=OPS).text
    r = c.responses.create(model=FAST_MODEL, input="Hello", max_output_tokens=16)
    c.chat.completions.create(
        model=FAST_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    httpx.get(
        f"{logged.base_url}/responses/resp_nothing", headers={"Authorization": f"Bearer {key}"}
    )
    text = httpx.get(f"{root}/metrics", headers=OPS).text
    route = {"route": "/v1/responses", "method": "POST", "status": "200"}
    assert metric(text, "kotae_requests_total", **route) >= 1
    assert (
        metric(text, "kotae_requests_total", route="/v1/responses/{response_id}", status="404") >= 1
    )
    assert metric(text, "kotae_request_duration_seconds_count", route="/v1/responses") >= 1
    out = metric(text, "kotae_tokens_total", model=FAST_MODEL, direction="output")
    assert out >= r.usage.output_tokens + 1
    assert metric(text, "kotae_tokens_total", model=FAST_MODEL, direction="input") > 0
    # Engines: the tiny model's runner, ready, having generated what was asked.
    assert metric(text, "kotae_engine_state", engine=FAST_MODEL, state="ready") == 1
    assert metric(text, "kotae_engine_queue_depth", engine=FAST_MODEL) == 0
    assert metric(text, "kotae_engine_generated_tokens_total", engine=FAST_MODEL) >= out
    assert "kotae_engine_restarts_total" in text
    assert "kotae_jobs" in text and "kotae_jobs" in before
