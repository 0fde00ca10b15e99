"""Ingestion left in progress by a stop resumes on the next start, never stuck."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from openai import OpenAI
from sqlalchemy import create_engine, text

from tests.helpers import Server, new_key


def test_in_progress_files_resume_after_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data)
    key = new_key(srv.env, "p")
    c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
    f = c.files.create(file=("notes.txt", b"The orchid blooms in April."), purpose="assistants")
    vs = c.vector_stores.create(name="r")
    srv.stop()
    # As if the server stopped between accepting the file and ingesting it.
    engine = create_engine(f"sqlite:///{data / 'kotae.db'}")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vector_store_files (store_id, file_id, project_id, batch_id, status, "
                "created_at, attributes, chunking, last_error, usage_bytes) SELECT :s, :f, "
                "project_id, NULL, 'in_progress', 0, '{}', :ch, NULL, 0 FROM vector_stores "
                "WHERE id = :s"
            ),
            {
                "s": vs.id,
                "f": f.id,
                "ch": '{"type": "static", "static": '
                '{"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}',
            },
        )
    engine.dispose()
    srv = Server(data)
    try:
        c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
        deadline = time.monotonic() + 60
        status = "in_progress"
        while status == "in_progress" and time.monotonic() < deadline:
            time.sleep(0.1)
            status = c.vector_stores.files.retrieve(vector_store_id=vs.id, file_id=f.id).status
        assert status == "completed"
        assert c.vector_stores.search(vector_store_id=vs.id, query="orchid").data
    finally:
        srv.stop()


MARKER = "Zanzibarite"


def wait_status(c: OpenAI, store_id: str, file_id: str) -> str:
    deadline = time.monotonic() + 60
    status = "in_progress"
    while status == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
        status = c.vector_stores.files.retrieve(vector_store_id=store_id, file_id=file_id).status
    return status


def lexical_hits(c: OpenAI, store_id: str) -> int:
    found = c.vector_stores.search(
        vector_store_id=store_id,
        query=MARKER,
        ranking_options={"ranker": "auto", "score_threshold": 0.0},
    )
    return sum(MARKER in part.text for hit in found.data for part in hit.content)


@pytest.mark.parametrize("point", ["ingest.after_chunks", "ingest.after_index"])
def test_a_kill_mid_ingestion_never_leaves_a_completed_file_search_cannot_find(
    tmp_path: Path, point: str
) -> None:
    data = tmp_path / "data"
    srv = Server(data, KOTAE_TEST_FAULT=point, KOTAE_LEASE_SECONDS="2")
    key = new_key(srv.env, "p")
    c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
    body = (f"Chapter one. The {MARKER} stone is green. " * 50).encode()
    f = c.files.create(file=("notes.txt", body), purpose="assistants")
    vs = c.vector_stores.create(name="k")
    c.vector_stores.files.create(vector_store_id=vs.id, file_id=f.id)
    assert srv.proc.wait(timeout=60) == -signal.SIGKILL  # killed at the named point
    srv._log.close()
    # Taken over once the dead server's lease on the file lapses (2 s here).
    srv = Server(data, KOTAE_LEASE_SECONDS="2")
    try:
        c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
        assert wait_status(c, vs.id, f.id) == "completed"
        assert lexical_hits(c, vs.id) >= 1
        # Ingested again after the kill: the chunks were replaced, not added twice.
        content = c.vector_stores.files.content(vector_store_id=vs.id, file_id=f.id)
        again = [p.text for p in content]
        assert len(again) == len(set(again)) or len(again) == 1
    finally:
        srv.stop()


def test_a_completed_file_missing_from_the_index_is_ingested_again(tmp_path: Path) -> None:
    """What older versions left when killed between the two databases: chunks and
    'completed' in kotae.db, nothing in vectors.db."""
    data = tmp_path / "data"
    srv = Server(data)
    key = new_key(srv.env, "p")
    c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
    f = c.files.create(file=("n.txt", f"The {MARKER} stone.".encode()), purpose="assistants")
    vs = c.vector_stores.create(name="m", file_ids=[f.id])
    assert wait_status(c, vs.id, f.id) == "completed"
    srv.stop()
    for leftover in data.glob("vectors.db*"):
        leftover.unlink()
    srv = Server(data)
    try:
        c = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
        assert wait_status(c, vs.id, f.id) == "completed"
        assert lexical_hits(c, vs.id) == 1
    finally:
        srv.stop()
