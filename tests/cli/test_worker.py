"""`kotae serve --no-worker` writes the work; `kotae worker` processes do it, under leases: one
killed (-9) mid-ingestion leaves the file to another, which finishes it without duplicates."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from openai import OpenAI

from tests.api.test_ingestion_restart import MARKER, lexical_hits, wait_status
from tests.helpers import Server, kotae_env, new_key, wait_until


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
