"""A client that goes away stops its generation, streamed or not (README: "Disconnects")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import Server, wait_until

DEFAULT_ID = "smollm2-135m-instruct"
# Counting to 10,000: SmolLM2 would decode all 2,000 allowed tokens (seconds of work).
BODY = {
    "model": "gpt-4o",
    "input": "Count from 1 to 10000, separated by commas.",
    "max_output_tokens": 2000,
    "temperature": 0,
    "store": False,
}


def engine(server: Server) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"http://127.0.0.1:{server.port}/ready").json()["engines"][
        DEFAULT_ID
    ]
    return state


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_gives_up_stops_the_generation(
    server: Server, key_a: str, stream: bool
) -> None:
    headers = {"Authorization": f"Bearer {key_a}"}
    warm = httpx.post(
        f"{server.base_url}/responses",
        json={"model": "gpt-4o", "input": "Hi", "max_output_tokens": 16},
        headers=headers,
        timeout=120,
    )
    assert warm.status_code == 200
    wait_until(lambda: engine(server)["in_flight"] == 0, 60, "the engine is idle")
    before = engine(server)["generated_tokens"]
    with httpx.Client(timeout=120) as client:
        if stream:
            with client.stream(
                "POST",
                f"{server.base_url}/responses",
                json={**BODY, "stream": True},
                headers=headers,
            ) as r:
                for line in r.iter_lines():
                    if "output_text.delta" in line:
                        break  # the client leaves after the first words
        else:
            with pytest.raises(httpx.ReadTimeout):
                client.post(f"{server.base_url}/responses", json=BODY, headers=headers, timeout=1.5)
    wait_until(lambda: engine(server)["in_flight"] == 0, 120, "the engine stops")
    spent = engine(server)["generated_tokens"] - before
    assert 0 < spent < 2000, spent
