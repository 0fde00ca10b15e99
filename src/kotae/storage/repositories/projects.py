"""Projects and their API keys."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from kotae import ids
from kotae.errors import Conflict, NotFound
from kotae.storage.orm import ApiKey, Project, Setting

DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class KeyInfo:
    id: str
    project_id: str
    project_name: str
    name: str
    redacted: str
    created_at: int
    revoked_at: int | None
    admin: bool = False
    last_used_at: int | None = None


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    name: str
    created_at: int


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ProjectRepository:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def get_or_create_project(self, name: str) -> str:
        with self._sessions.begin() as s:
            existing = s.scalar(select(Project.id).where(Project.name == name))
            if existing:
                return existing
            project = Project(id=ids.new_id("proj"), name=name, created_at=int(time.time()))
            s.add(project)
            return project.id

    def project_name(self, project_id: str) -> str:
        with self._sessions() as s:
            return s.scalar(select(Project.name).where(Project.id == project_id)) or project_id

    def create_project(self, name: str) -> ProjectInfo:
        with self._sessions.begin() as s:
            if s.scalar(select(Project.id).where(Project.name == name)):
                raise Conflict(f"A project named '{name}' already exists.", param="name")
            project = Project(id=ids.new_id("proj"), name=name, created_at=int(time.time()))
            s.add(project)
            return ProjectInfo(project.id, project.name, project.created_at)

    def list_projects(self) -> list[ProjectInfo]:
        with self._sessions() as s:
            rows = s.execute(select(Project).order_by(Project.created_at, Project.id)).scalars()
            return [ProjectInfo(p.id, p.name, p.created_at) for p in rows]

    def get_project(self, project_id: str) -> ProjectInfo:
        with self._sessions() as s:
            p = s.get(Project, project_id)
            if p is None:
                raise NotFound(f"No project with id '{project_id}'.", param="project_id")
            return ProjectInfo(p.id, p.name, p.created_at)

    def create_key(
        self, project_name: str, name: str = "", *, admin: bool = False
    ) -> tuple[str, KeyInfo]:
        """Returns the plain key (shown once) and what is stored of it."""
        project_id = self.get_or_create_project(project_name)
        key = ids.api_key()
        row = ApiKey(
            id=ids.new_id("key"),
            project_id=project_id,
            name=name,
            key_hash=hash_key(key),
            redacted=f"{key[:12]}...{key[-4:]}",
            created_at=int(time.time()),
            admin=admin,
        )
        with self._sessions.begin() as s:
            s.add(row)
        return key, KeyInfo(
            row.id, project_id, project_name, name, row.redacted, row.created_at, None, admin
        )

    def verify(self, key: str) -> str | None:
        """The project id of a valid, unrevoked key, else None."""
        with self._sessions() as s:
            row = s.execute(
                select(ApiKey.project_id, ApiKey.revoked_at).where(ApiKey.key_hash == hash_key(key))
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return str(row.project_id)

    def mark_used(self, key: str, when: int) -> None:
        """The key's `last_used_at` (the caller writes it at most once a minute a key)."""
        with self._sessions.begin() as s:
            s.execute(
                update(ApiKey).where(ApiKey.key_hash == hash_key(key)).values(last_used_at=when)
            )

    def is_admin(self, key: str) -> bool:
        with self._sessions() as s:
            row = s.execute(
                select(ApiKey.admin, ApiKey.revoked_at).where(ApiKey.key_hash == hash_key(key))
            ).first()
        return row is not None and row.revoked_at is None and bool(row.admin)

    def list_keys(
        self, project_name: str | None = None, *, project_id: str | None = None
    ) -> list[KeyInfo]:
        with self._sessions() as s:
            query = select(ApiKey, Project.name).join(Project, Project.id == ApiKey.project_id)
            if project_name:
                query = query.where(Project.name == project_name)
            if project_id:
                query = query.where(Project.id == project_id)
            rows = s.execute(query.order_by(ApiKey.created_at, ApiKey.id)).all()
        return [
            KeyInfo(
                k.id,
                k.project_id,
                p,
                k.name,
                k.redacted,
                k.created_at,
                k.revoked_at,
                k.admin,
                k.last_used_at,
            )
            for k, p in rows
        ]

    def revoke(self, key_id: str, project_id: str | None = None) -> None:
        """`project_id`: only a key of that project (another project's key is not found)."""
        with self._sessions.begin() as s:
            row = s.get(ApiKey, key_id)
            # Seen from a project (the API), another project's or a revoked key is gone.
            scoped = project_id is not None
            if row is None or (
                scoped and (row.project_id != project_id or row.revoked_at is not None)
            ):
                raise NotFound(f"No API key with id '{key_id}'.", param="key_id")
            if row.revoked_at is not None:
                raise Conflict(f"API key '{key_id}' is already revoked.")
            row.revoked_at = int(time.time())

    def get_setting(self, key: str) -> str | None:
        with self._sessions() as s:
            row = s.get(Setting, key)
            return row.value if row else None

    def claim_setting(self, key: str, value: str) -> bool:
        """Sets `key` once; False when it was already set (by this or another process)."""
        with self._sessions.begin() as s:
            if s.get(Setting, key) is not None:
                return False
            s.add(Setting(key=key, value=value))
            return True
