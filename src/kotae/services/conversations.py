"""Conversations: a durable list of items that responses read from and append to."""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, select, update

from kotae import ids
from kotae.errors import InvalidRequest, NotFound
from kotae.services.responses.convert import normalize_input
from kotae.storage.engine import insert_rows
from kotae.storage.orm import Conversation, ConversationItem
from kotae.storage.repositories.paging import cursor_page

CONVERSATIONS = cast(Table, Conversation.__table__)
ITEMS = cast(Table, ConversationItem.__table__)
MAX_CREATE_ITEMS = 20


class ConversationsService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @staticmethod
    def _object(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "object": "conversation",
            "created_at": row["created_at"],
            "metadata": row["metadata"],
        }

    def _row(
        self,
        project_id: str,
        conversation_id: str,
        param: str = "conversation_id",
    ) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(CONVERSATIONS).where(
                    CONVERSATIONS.c.id == conversation_id, CONVERSATIONS.c.project_id == project_id
                )
            ).first()
        if row is None:
            raise NotFound(f"Conversation with id '{conversation_id}' not found.", param=param)
        return dict(row._mapping)

    def create(
        self, project_id: str, items: list[dict[str, Any]] | None, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        if items and len(items) > MAX_CREATE_ITEMS:
            raise InvalidRequest(f"At most {MAX_CREATE_ITEMS} items at creation.", param="items")
        stored = normalize_input(items or [], param="items")
        conversation_id = ids.new_id("conv")
        row: dict[str, Any] = {
            "id": conversation_id,
            "project_id": project_id,
            "created_at": int(time.time()),
            "metadata": metadata or {},
        }
        with self._engine.begin() as conn:
            conn.execute(CONVERSATIONS.insert(), row)
            self._append(conn, conversation_id, stored)
        return self._object(row)

    @staticmethod
    def _append(conn: Any, conversation_id: str, items: list[dict[str, Any]]) -> None:
        insert_rows(
            conn,
            ITEMS,
            ({"conversation_id": conversation_id, "item_id": i["id"], "data": i} for i in items),
        )

    def retrieve(self, project_id: str, conversation_id: str) -> dict[str, Any]:
        return self._object(self._row(project_id, conversation_id))

    def update(
        self, project_id: str, conversation_id: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        self._row(project_id, conversation_id)
        with self._engine.begin() as conn:
            conn.execute(
                update(CONVERSATIONS)
                .where(CONVERSATIONS.c.id == conversation_id)
                .values(metadata=metadata)
            )
        return self.retrieve(project_id, conversation_id)

    def delete(self, project_id: str, conversation_id: str) -> None:
        self._row(project_id, conversation_id)
        with self._engine.begin() as conn:
            conn.execute(delete(ITEMS).where(ITEMS.c.conversation_id == conversation_id))
            conn.execute(delete(CONVERSATIONS).where(CONVERSATIONS.c.id == conversation_id))

    def items(
        self,
        project_id: str,
        conversation_id: str,
        param: str = "conversation_id",
    ) -> list[dict[str, Any]]:
        """Every item, oldest first (what a response reads as context)."""
        self._row(project_id, conversation_id, param)
        with self._engine.connect() as conn:
            return [
                r.data
                for r in conn.execute(
                    select(ITEMS.c.data)
                    .where(ITEMS.c.conversation_id == conversation_id)
                    .order_by(ITEMS.c.pk)
                )
            ]

    def list_items(
        self, project_id: str, conversation_id: str, *, limit: int, order: str, after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        rows = self.items(project_id, conversation_id)
        if order == "desc":
            rows.reverse()
        return cursor_page(rows, "id", limit, after, None)

    def add_items(
        self, project_id: str, conversation_id: str, items: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        self._row(project_id, conversation_id)
        if not items or len(items) > MAX_CREATE_ITEMS:
            raise InvalidRequest(f"Send 1 to {MAX_CREATE_ITEMS} items.", param="items")
        stored = normalize_input(items, param="items")
        with self._engine.begin() as conn:
            self._append(conn, conversation_id, stored)
        return stored

    def append(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            self._append(conn, conversation_id, items)

    def get_item(self, project_id: str, conversation_id: str, item_id: str) -> dict[str, Any]:
        for item in self.items(project_id, conversation_id):
            if item["id"] == item_id:
                return item
        raise NotFound(f"Item with id '{item_id}' not found.", param="item_id")

    def delete_item(self, project_id: str, conversation_id: str, item_id: str) -> dict[str, Any]:
        self.get_item(project_id, conversation_id, item_id)
        with self._engine.begin() as conn:
            conn.execute(
                delete(ITEMS).where(
                    ITEMS.c.conversation_id == conversation_id, ITEMS.c.item_id == item_id
                )
            )
        return self.retrieve(project_id, conversation_id)
