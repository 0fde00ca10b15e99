"""Leases on rows of work: the process doing it (`owner`) renews `lease_expires_at`; a row
whose lease lapsed belongs to nobody, and whoever notices takes it over (or fails it)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, or_, update


def lapsed(table: Table) -> ColumnElement[bool]:
    now = int(time.time())
    return or_(table.c.lease_expires_at.is_(None), table.c.lease_expires_at < now)


def takeable(table: Table, owner: str) -> ColumnElement[bool]:
    """Unowned, lapsed, or already this owner's."""
    return or_(lapsed(table), table.c.owner == owner)


def held(owner: str, seconds: int) -> dict[str, Any]:
    """The column values of a lease taken now."""
    return {"owner": owner, "lease_expires_at": int(time.time()) + seconds}


def renew(engine: Engine, table: Table, owner: str, seconds: int, status: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            update(table)
            .where(table.c.owner == owner, table.c.status == status)
            .values(lease_expires_at=int(time.time()) + seconds)
        )
    return int(getattr(result, "rowcount", 0) or 0)
