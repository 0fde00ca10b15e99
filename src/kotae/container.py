"""The composition root: settings, storage, models and services, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from kotae.api.deps_cache import KeyCache
from kotae.config import Settings
from kotae.providers.blobs.local import LocalBlobStore
from kotae.services.chat_completions import ChatCompletionsService
from kotae.services.files import FilesService
from kotae.services.models import ModelRegistry
from kotae.services.responses.service import ResponsesService
from kotae.storage.engine import make_engine, migrate, session_factory
from kotae.storage.repositories.files import FileRepository
from kotae.storage.repositories.projects import ProjectRepository
from kotae.storage.repositories.responses import ResponseRepository


@dataclass
class Container:
    settings: Settings
    projects: ProjectRepository
    responses_repo: ResponseRepository
    models: ModelRegistry
    responses: ResponsesService
    chat_completions: ChatCompletionsService
    files: FilesService
    key_cache: KeyCache

    @classmethod
    def build(cls, settings: Settings) -> Container:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.sqlalchemy_url)
        migrate(engine)
        sessions = session_factory(engine)
        projects = ProjectRepository(sessions)
        responses_repo = ResponseRepository(engine)
        models = ModelRegistry(settings)
        return cls(
            settings=settings,
            projects=projects,
            responses_repo=responses_repo,
            models=models,
            responses=ResponsesService(settings, models, responses_repo),
            chat_completions=ChatCompletionsService(settings, models),
            files=FilesService(
                settings, FileRepository(engine), LocalBlobStore(settings.data_dir / "files")
            ),
            key_cache=KeyCache(settings.key_cache_seconds),
        )
