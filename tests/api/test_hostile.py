"""Hostile bodies: each is refused with OpenAI's 400 envelope, the server stays up and answers
others, and nothing is half-written. (How long /health waits meanwhile is measured in
bench/hostile.py, not asserted here.)"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAST_MODEL, REAL_MODEL
from tests.helpers import Server, children, new_key, wait_until
from tests.helpers import alive as process_alive


def post(server: Server, key: str, path: str, body: bytes | dict[str, Any]) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{server.base_url}{path}",
        content=raw,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=120,
    )


def assert_envelope(r: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return dict(error)


def alive(server: Server) -> None:
    assert httpx.get(f"{server.base_url.removesuffix('/v1')}/health", timeout=10).status_code == 200


# A lone surrogate, as JSON carries it (\ud800 written out): Python's json reads it into a str
# that UTF-8 cannot encode.
LONE = "\\ud800"

SURROGATE_BODIES = {
    "metadata key": ("/responses", '{"model":"%s","input":"hi","metadata":{"%s":"v"}}'),
    "top-level key": ("/responses", '{"model":"%s","input":"hi","%s":1}'),
    "input item key": (
        "/responses",
        '{"model":"%s","input":[{"role":"user","content":"hi","%s":1}]}',
    ),
    "json_schema property": (
        "/responses",
        '{"model":"%s","input":"hi","text":{"format":{"type":"json_schema","name":"x",'
        '"schema":{"type":"object","properties":{"%s":{"type":"string"}}}}}}',
    ),
    "input text": ("/responses", '{"model":"%s","input":"hi %s"}'),
    "chat completions": (
        "/chat/completions",
        '{"model":"%s","messages":[{"role":"user","content":"hi"}],"metadata":{"%s":"v"}}',
    ),
    "vector store metadata": ("/vector_stores", '{"name":"%s","metadata":{"%s":"v"}}'),
    "conversation metadata": ("/conversations", '{"metadata":{"k":"%s","%s":"v"}}'),
}


@pytest.mark.parametrize("case", sorted(SURROGATE_BODIES))
def test_a_lone_surrogate_is_a_400_never_a_500(server: Server, key_a: str, case: str) -> None:
    path, template = SURROGATE_BODIES[case]
    body = (template % (FAST_MODEL, LONE)).encode()
    error = assert_envelope(post(server, key_a, path, body))
    assert error["code"] == "invalid_unicode"
    assert "\ud800" not in json.dumps(error, ensure_ascii=False)
    alive(server)


def test_nothing_is_stored_from_a_refused_body(server: Server, key_a: str) -> None:
    before = httpx.get(
        f"{server.base_url}/vector_stores", headers={"Authorization": f"Bearer {key_a}"}
    ).json()["data"]
    body = ('{"name":"half","metadata":{"' + LONE + '":"v"}}').encode()
    assert_envelope(post(server, key_a, "/vector_stores", body))
    after = httpx.get(
        f"{server.base_url}/vector_stores", headers={"Authorization": f"Bearer {key_a}"}
    ).json()["data"]
    assert [s["id"] for s in after] == [s["id"] for s in before]


def test_embeddings_over_openais_caps_are_refused_before_validation(
    server: Server, key_a: str
) -> None:
    # 3,000,000 integers (about 6 MB): checked in the child process, not validated here.
    many = b'{"model":"text-embedding-3-small","input":[' + b",".join([b"7"] * 3_000_000) + b"]}"
    error = assert_envelope(post(server, key_a, "/embeddings", many))
    assert error["param"] == "input" and "8192 tokens" in error["message"]
    strings = {"model": "text-embedding-3-small", "input": ["a"] * 2049}
    error = assert_envelope(post(server, key_a, "/embeddings", strings))
    assert error["param"] == "input" and "2048" in error["message"]
    nested = {"model": "text-embedding-3-small", "input": [[1, 2], [3] * 8193]}
    assert assert_envelope(post(server, key_a, "/embeddings", nested))["param"] == "input[1]"
    alive(server)


def test_a_million_tiny_messages_is_a_400(server: Server, key_a: str) -> None:
    item = b'{"role":"user","content":"x"},'
    body = b'{"model":"%s","input":[' % FAST_MODEL.encode() + item * 1_000_000
    body = body[:-1] + b"]}"
    error = assert_envelope(post(server, key_a, "/responses", body))
    assert error["param"] == "input" and "100000" in error["message"]
    alive(server)


@pytest.mark.parametrize(
    ("path", "field", "last"),
    [
        # An item reference that was looked up (a not_found) after all the work.
        ("/responses", "input", b'{"type":"item_reference","id":"msg_nowhere"}'),
        # A tool message without its call id, read after the messages were converted.
        ("/chat/completions", "messages", b'{"role":"tool","content":"r"}'),
    ],
)
def test_more_messages_than_the_window_holds_are_refused_before_any_is_read(
    server: Server, key_a: str, path: str, field: str, last: bytes
) -> None:
    """Counted first: 100,000 messages (3 MB) were built into stored items and engine messages
    (~107 MB; chat completions converted them on the event loop, /health silent ~0.5 s)
    before the same 400. The last one, which would be refused on its own, is never read."""
    item = b'{"role":"user","content":"x"},'
    body = b'{"model":"%s","%s":[' % (FAST_MODEL.encode(), field.encode()) + item * 99_999
    body += last + b"]}"
    error = assert_envelope(post(server, key_a, path, body))
    assert error["code"] == "context_length_exceeded" and error["param"] == field
    assert f"{99_999 if field == 'input' else 100_000} messages" in error["message"]
    alive(server)


@pytest.mark.parametrize("path", ["/responses", "/chat/completions"])
def test_more_tools_than_the_window_holds_are_refused_before_the_engine_counts_them(
    server: Server, key_a: str, path: str
) -> None:
    """100,000 tools held the engine 10 s only to be counted; chat completions did not count
    them at all (the engine was handed them to answer)."""
    params = {"type": "object", "properties": {}}
    if path == "/responses":
        tools: list[dict[str, Any]] = [
            {"type": "function", "name": f"f{i}", "parameters": params} for i in range(3000)
        ]
        body: dict[str, Any] = {"model": FAST_MODEL, "input": "hi", "tools": tools}
    else:
        tools = [
            {"type": "function", "function": {"name": f"f{i}", "parameters": params}}
            for i in range(3000)
        ]
        body = {"model": FAST_MODEL, "messages": [{"role": "user", "content": "hi"}]}
        body["tools"] = tools
    error = assert_envelope(post(server, key_a, path, body))
    assert error["code"] == "context_length_exceeded" and error["param"] == "tools"
    assert "3000 tools" in error["message"]
    # Fewer tools whose text the window cannot hold: counted with the prompt, a 400 too.
    body["tools"] = tools[:1500]
    error = assert_envelope(post(server, key_a, path, body))
    assert error["code"] == "context_length_exceeded"
    alive(server)


def test_deep_nesting_is_a_400(server: Server, key_a: str) -> None:
    deep = '{"model":"' + FAST_MODEL + '","input":"hi","metadata":{"k":"v"},"text":'
    deep += '{"a":' * 100 + "1" + "}" * 100 + "}"
    assert assert_envelope(post(server, key_a, "/responses", deep.encode()))["code"] == "too_deep"
    alive(server)


def test_broken_json_is_still_openais_parse_error(server: Server, key_a: str) -> None:
    error = assert_envelope(post(server, key_a, "/responses", b'{"model": "x", "input": '))
    assert "could not parse the JSON body" in error["message"]


def test_token_array_embeddings_read_cl100k_tokens(client: Any) -> None:
    # [9906, 1917] is "Hello world" in cl100k_base, as tiktoken (and LangChain) send it.
    text = client.embeddings.create(model="text-embedding-3-small", input="Hello world")
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[9906, 1917])
    both = client.embeddings.create(model="text-embedding-3-small", input=[[9906, 1917], [9906]])
    assert tokens.data[0].embedding == pytest.approx(text.data[0].embedding, abs=1e-6)
    assert both.data[0].embedding == pytest.approx(text.data[0].embedding, abs=1e-6)
    assert len(both.data) == 2
    with pytest.raises(Exception) as bad:
        client.embeddings.create(model="text-embedding-3-small", input=[9906, 10**7])
    assert getattr(bad.value, "status_code", None) == 400


def test_a_burst_never_admits_more_than_the_queue_cap(tmp_path: Path) -> None:
    """60 streams at once against a queue of 8: at most 8 admitted, the rest OpenAI's 429 with
    retry-after and x-ratelimit-* (all 60 were admitted when the place was taken only once
    the stream started, awaits after the check)."""
    srv = Server(tmp_path / "data", KOTAE_MAX_QUEUED_REQUESTS="8")
    try:
        key = new_key(srv.env, "p")
        body = {"model": REAL_MODEL, "input": "Count to five.", "max_output_tokens": 16}

        async def one(client: httpx.AsyncClient) -> httpx.Response:
            return await client.post(
                f"{srv.base_url}/responses",
                json={**body, "stream": True},
                headers={"Authorization": f"Bearer {key}"},
            )

        async def burst() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=60)
            async with httpx.AsyncClient(timeout=300, limits=limits) as client:
                return list(await asyncio.gather(*(one(client) for _ in range(60))))

        answers = asyncio.run(burst())
        admitted = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code == 429]
        assert len(admitted) + len(refused) == 60
        assert 1 <= len(admitted) <= 8
        for r in refused:
            assert r.json()["error"]["code"] == "rate_limit_exceeded"
            assert r.headers["retry-after"] == "1"
            assert r.headers["x-ratelimit-limit-requests"] == "8"
            assert r.headers["x-ratelimit-remaining-requests"] == "0"
        for r in admitted:  # each ran to its end (16 tokens: completed or incomplete)
            assert r.text.rstrip().endswith(
                ('"type":"response.completed"}', '"type":"response.incomplete"}')
            )
        # Every place was given back: as many again are admitted.
        again = asyncio.run(burst())
        assert 1 <= sum(r.status_code == 200 for r in again) <= 8
    finally:
        srv.stop()


# A small hostile case list, sent to every POST route OpenAI's document lists and kotae
# serves: each is a 4xx envelope, the server lives, and nothing is half-written.
HOSTILE_CASES = {
    "lone surrogate key": b'{"\\ud800": 1}',
    "lone surrogate text": b'{"model": "x\\udfff", "input": "\\ud800"}',
    "deep nesting": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "huge unknown array": b'{"zz":[' + b",".join([b"1"] * 200_000) + b"]}",
    "not an object": b"[1, 2, 3]",
    "broken": b'{"model": ',
}


def post_routes() -> list[str]:
    from tests.conformance import oracle

    if not oracle.SPEC_PATH.exists():
        return []
    return sorted({path for method, path in oracle.served_operations() if method == "POST"})


def stored_counts(server: Server, key: str) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {key}"}
    counts = {}
    for path in ("/files", "/vector_stores", "/fine_tuning/jobs", "/responses"):
        r = httpx.get(f"{server.base_url}{path}?limit=100", headers=headers, timeout=30)
        counts[path] = len(r.json().get("data", [])) if r.status_code == 200 else -1
    return counts


def test_every_post_route_refuses_hostile_bodies_cleanly(server: Server, key_b: str) -> None:
    routes = post_routes()
    if not routes:
        pytest.skip("no OpenAI spec here")
    before = stored_counts(server, key_b)
    for template in routes:
        path = re.sub(r"\{[^}]+\}", "x_hostile", template)
        for case, body in HOSTILE_CASES.items():
            r = post(server, key_b, path, body)
            assert 400 <= r.status_code < 500, (template, case, r.status_code, r.text[:300])
            error = r.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}, (template, case)
        alive(server)
    assert stored_counts(server, key_b) == before


def test_a_large_valid_body_is_served_through_the_off_loop_path(server: Server, key_a: str) -> None:
    """Over 256 KB: checked in the child process, parsed and validated in a thread, then
    answered as any request. 20,000 messages with truncation "auto" fit in a few counts."""
    words = "lorem ipsum dolor sit amet " * 4
    items = [{"role": "user", "content": f"{i} {words}"} for i in range(20_000)]
    body = {"model": FAST_MODEL, "input": items, "truncation": "auto", "max_output_tokens": 16}
    r = post(server, key_a, "/responses", body)
    assert r.status_code == 200, r.text[:500]
    answer = r.json()
    assert answer["status"] in ("completed", "incomplete")
    assert 0 < answer["usage"]["input_tokens"] <= 2048
    error = assert_envelope(post(server, key_a, "/responses", {**body, "temperature": "hot"}))
    assert error["param"] == "temperature"  # a large body that does not validate: FastAPI's 400


def test_the_body_checker_dies_with_the_server(tmp_path: Path) -> None:
    """The child process that checks large bodies goes with the server, even on kill -9."""
    srv = Server(tmp_path / "data")
    try:
        key = new_key(srv.env, "p")
        big = {"model": FAST_MODEL, "input": "x " * 200_000, "max_output_tokens": 16}
        assert post(srv, key, "/responses", big).status_code == 400  # too long: checked first
        checkers = children(srv.proc.pid, "multiprocessing.spawn")
        assert checkers, "a large body is checked in a child process"
        srv.proc.kill()
        wait_until(
            lambda: not any(process_alive(pid) for pid in checkers), 30, "the checker to exit"
        )
    finally:
        srv.stop()
