"""PostgreSQL 16 with pgvector for the tests: PyPI's `pgserver` wheel, started once per test
session on a Unix socket (no root, no network), a database for each caller."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

_server: Any = None


def available() -> bool:
    try:
        import pgserver  # noqa: F401
    except ImportError:
        return False
    return True


def server() -> Any:
    global _server
    if _server is None:
        import pgserver

        root = Path(os.environ.get("KOTAE_TEST_PGDATA") or tempfile.mkdtemp(prefix="kotae-pg-"))
        _server = pgserver.get_server(root, cleanup_mode="stop")
    return _server


def database_url(name: str) -> str:
    """A SQLAlchemy URL of database `name` (made when missing) on the session's server."""
    db = "k_" + hashlib.sha1(name.encode()).hexdigest()[:20]
    srv = server()
    exists = srv.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}';")
    if "(1 row)" not in exists:
        srv.psql(f"CREATE DATABASE {db};")
    socket_dir = str(srv.get_uri()).split("host=")[-1]
    return f"postgresql+psycopg://postgres@/{db}?host={socket_dir}"
