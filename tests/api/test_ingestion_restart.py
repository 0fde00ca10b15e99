"""Ingestion left in progress by a stop resumes on the next start, never stuck."""

from __future__ import annotations

import time
from pathlib import Path

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
