"""Database engine and migrations. SQLite (WAL) by default; any SQLAlchemy URL works."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
ROWS_A_STATEMENT = 1000  # rows one INSERT of many writes
SCHEMA_LOCK = 0x6B6F746165  # "kotae": the advisory lock schema changes on PostgreSQL take


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_dumps,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe to call on every start)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait and find it done.
            conn.execute(text(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def within(engine: Engine, conn: Connection | None) -> Iterator[Connection]:
    """The caller's transaction when it gives one, else a new one committed at the end."""
    if conn is not None:
        yield conn
        return
    with engine.begin() as own:
        yield own


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def insert_rows(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """Many rows, written a slice at a time: 100,000 items' rows and their JSON built for one
    statement are ~70 MB held at once."""
    it = iter(rows)
    while batch := list(itertools.islice(it, ROWS_A_STATEMENT)):
        conn.execute(table.insert(), batch)
