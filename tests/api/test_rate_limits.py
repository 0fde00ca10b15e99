"""`rate_limit_rpm`: requests per minute per project on the model routes, counted in the
database, so two replicas share one limit; beyond it, OpenAI's 429 with retry-after."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL
from tests.helpers import Server, new_key


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    a = Server(tmp_path / "d", KOTAE_RATE_LIMIT_RPM="4")
    b = Server(tmp_path / "d", log_name="serve-b.log", worker=False, KOTAE_RATE_LIMIT_RPM="4")
    yield a, b
    b.stop()
    a.stop()


def test_the_limit_holds_across_replicas(replicas: tuple[Server, Server]) -> None:
    a, b = replicas
    key, other_key = new_key(a.env, "p"), new_key(a.env, "q")
    on_a = OpenAI(base_url=a.base_url, api_key=key, max_retries=0)
    on_b = OpenAI(base_url=b.base_url, api_key=key, max_retries=0)
    if time.time() % 60 > 30:  # the count is per clock minute: not across its end
        time.sleep(61 - time.time() % 60)
    for n, client in enumerate((on_a, on_a, on_a, on_b)):  # 3 + 1: the limit of 4 together
        raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="x")
        assert raw.headers["x-ratelimit-limit-requests"] == "4"
        assert raw.headers["x-ratelimit-remaining-requests"] == str(3 - n)
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as err:
        on_b.responses.create(model=FAST_MODEL, input="x", max_output_tokens=8)
    body = err.value.body
    assert isinstance(body, dict)
    assert (body["type"], body["code"]) == ("requests", "rate_limit_exceeded")
    assert "Limit 4" in body["message"]
    headers = err.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit-requests"] == "4"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError):
        on_a.chat.completions.create(
            model=FAST_MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=8
        )
    # Routes that run no model are not counted, and another project has its own minute.
    assert on_a.files.list().data == []
    other = OpenAI(base_url=b.base_url, api_key=other_key, max_retries=0)
    assert other.embeddings.create(model="text-embedding-3-small", input="x").data
