"""Webhook endpoints and deliveries in the database."""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, select, update

from kotae.storage import leases
from kotae.storage.orm import WebhookDelivery, WebhookEndpointRow

ENDPOINTS = cast(Table, WebhookEndpointRow.__table__)
DELIVERIES = cast(Table, WebhookDelivery.__table__)


class WebhookStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_endpoint(self, row: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(ENDPOINTS.insert(), row)

    def endpoint(self, project_id: str, endpoint_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(ENDPOINTS).where(
                    ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.project_id == project_id
                )
            ).first()
        return dict(row._mapping) if row is not None else None

    def endpoint_by_id(self, endpoint_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id)).first()
        return dict(row._mapping) if row is not None else None

    def endpoints(self, project_id: str) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(ENDPOINTS)
                .where(ENDPOINTS.c.project_id == project_id)
                .order_by(ENDPOINTS.c.pk.desc())
            )
            return [dict(r._mapping) for r in rows]

    def update_endpoint(self, endpoint_id: str, values: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(**values))

    def delete_endpoint(self, endpoint_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.endpoint_id == endpoint_id, DELIVERIES.c.status == "pending")
                .values(status="failed", last_error="The endpoint was deleted.")
            )

    # -- deliveries ---------------------------------------------------------------------------

    def add_deliveries(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self._engine.begin() as conn:
                conn.execute(DELIVERIES.insert(), rows)

    def claim_due(self, owner: str, lease_seconds: int, limit: int) -> list[dict[str, Any]]:
        """Pending deliveries whose time has come, leased to `owner` (a worker that dies
        mid-send leaves them to another: delivery is at least once)."""
        now = int(time.time())
        due = (
            (DELIVERIES.c.status == "pending")
            & (DELIVERIES.c.next_attempt_at <= now)
            & leases.lapsed(DELIVERIES)
        )
        taken: list[dict[str, Any]] = []
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(DELIVERIES).where(due).order_by(DELIVERIES.c.next_attempt_at).limit(limit)
            ).all()
            for row in rows:
                got = conn.execute(
                    update(DELIVERIES)
                    .where(DELIVERIES.c.pk == row.pk, due)
                    .values(**leases.held(owner, lease_seconds))
                )
                if int(getattr(got, "rowcount", 0) or 0) == 1:
                    taken.append(dict(row._mapping))
        return taken

    def record(self, pk: int, values: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.pk == pk)
                .values(owner=None, lease_expires_at=None, **values)
            )

    def deliveries(self, project_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(DELIVERIES)
                .where(DELIVERIES.c.project_id == project_id)
                .order_by(DELIVERIES.c.pk.desc())
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]
