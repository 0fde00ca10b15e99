"""A client that goes away stops its generation, streamed or not (README: "Disconnects")."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from tests.helpers import OPS, Server, wait_until

DEFAULT_ID = "smollm2-135m-instruct"
# SmolLM2 tells this story in about 650 tokens at temperature 0 (seconds of work, and no
# loop for the loop guard to stop early).
FULL_STORY = 600
BODY = {
    "model": "gpt-4o",
    "input": "Write a very long story about a robot who learns to paint, with many chapters.",
    "max_output_tokens": 2000,
    "temperature": 0,
    "store": False,
}


def engine(server: Server) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"http://127.0.0.1:{server.port}/ready", headers=OPS).json()[
        "engines"
    ][DEFAULT_ID]
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
            # A raw connection, closed once the engine is decoding for it (a fixed timeout
            # would leave before the first token on a busy machine).
            body = json.dumps(BODY).encode()
            with socket.create_connection(("127.0.0.1", server.port)) as conn:
                conn.sendall(
                    b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + f"Authorization: Bearer {key_a}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                wait_until(
                    lambda: engine(server)["generated_tokens"] > before, 120, "decoding starts"
                )
    wait_until(lambda: engine(server)["in_flight"] == 0, 120, "the engine stops")
    spent = engine(server)["generated_tokens"] - before
    # Cut by the disconnect a few tokens in, far short of the whole story.
    assert 0 < spent < FULL_STORY // 2, spent
