"""The composition root: settings, storage, models and services, built once per process."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from kotae.api.deps_cache import KeyCache
from kotae.config import Settings
from kotae.net.fetch import Fetcher
from kotae.net.guard import FetchGuard
from kotae.ops.metrics import Metrics
from kotae.providers.blobs.base import BlobStore, blob_store
from kotae.providers.embeddings.use import UseMultilingual
from kotae.providers.sandbox.base import Sandbox
from kotae.providers.sandbox.bubblewrap import BubblewrapSandbox
from kotae.providers.vector_index.base import VectorIndex
from kotae.providers.vector_index.sqlite_vec import SqliteVecIndex
from kotae.providers.vision.perception_runner import PerceptionRunner
from kotae.providers.web_search.base import WebSearchProvider
from kotae.providers.web_search.brave import BraveProvider
from kotae.providers.web_search.searxng import SearxngProvider
from kotae.services.batches.lines import LineRunner
from kotae.services.batches.service import BatchesService
from kotae.services.batches.store import BatchStore
from kotae.services.chat_completions import ChatCompletionsService
from kotae.services.completions import CompletionsService
from kotae.services.containers.runs import RunQueue
from kotae.services.containers.service import ContainersService
from kotae.services.containers.store import ContainerStore
from kotae.services.conversations import ConversationsService
from kotae.services.embeddings import EmbeddingsService
from kotae.services.files import FilesService
from kotae.services.fine_tuning import FineTuningService
from kotae.services.images import SECRET_SETTING, ImagesService
from kotae.services.models import ModelRegistry
from kotae.services.prompts import PromptsService
from kotae.services.reconcile import Reconciler
from kotae.services.responses.media import MediaResolver
from kotae.services.responses.sealing import Sealer
from kotae.services.responses.service import ResponsesService
from kotae.services.stored_chat_completions import StoredChatCompletions
from kotae.services.uploads import UploadsService
from kotae.services.vector_stores.service import VectorStoresService
from kotae.services.webhooks.service import WebhooksService
from kotae.services.webhooks.store import WebhookStore
from kotae.storage.engine import make_engine, migrate, session_factory
from kotae.storage.repositories.files import FileRepository
from kotae.storage.repositories.fine_tuning import FineTuningRepository
from kotae.storage.repositories.image_jobs import ImageJobRepository
from kotae.storage.repositories.projects import ProjectRepository
from kotae.storage.repositories.rate_limits import RateLimitRepository
from kotae.storage.repositories.responses import ResponseRepository
from kotae.storage.repositories.stats import job_counts
from kotae.storage.repositories.vector_stores import VectorStoreRepository


def web_provider(settings: Settings) -> WebSearchProvider | None:
    if settings.web_search_provider == "searxng" and settings.searxng_url:
        return SearxngProvider(settings.searxng_url, settings.fetch_timeout_seconds)
    if settings.web_search_provider == "brave" and settings.brave_api_key:
        return BraveProvider(
            settings.brave_api_key, settings.brave_url, settings.fetch_timeout_seconds
        )
    return None


@dataclass
class Container:
    settings: Settings
    projects: ProjectRepository
    responses_repo: ResponseRepository
    models: ModelRegistry
    responses: ResponsesService
    chat_completions: ChatCompletionsService
    files: FilesService
    vector_stores: VectorStoresService
    embeddings: EmbeddingsService
    uploads: UploadsService
    conversations: ConversationsService
    stored_chat_completions: StoredChatCompletions
    completions: CompletionsService
    key_cache: KeyCache
    fine_tuning: FineTuningService
    images: ImagesService
    perception: PerceptionRunner
    reconciler: Reconciler
    metrics: Metrics
    blobs: BlobStore
    rate_limits: RateLimitRepository
    containers: ContainersService
    batches: BatchesService
    webhooks: WebhooksService
    prompts: PromptsService

    @classmethod
    def build(cls, settings: Settings) -> Container:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.sqlalchemy_url)
        migrate(engine)
        metrics = Metrics()
        sessions = session_factory(engine)
        projects = ProjectRepository(sessions)
        responses_repo = ResponseRepository(engine)
        models = ModelRegistry(settings)
        file_rows = FileRepository(engine)
        blobs = blob_store(settings)
        files = FilesService(settings, file_rows, blobs)
        embedder = UseMultilingual()
        vector_stores = VectorStoresService(
            VectorStoreRepository(engine),
            files,
            file_rows,
            embedder,
            vector_index(settings, engine, embedder.dimensions),
            lease_seconds=settings.lease_seconds,
        )
        fetcher = Fetcher(
            FetchGuard(settings.fetch_allow_hosts.split(",")),
            timeout=settings.fetch_timeout_seconds,
            max_bytes=settings.fetch_max_bytes,
        )
        conversations = ConversationsService(engine)
        webhooks = WebhooksService(
            WebhookStore(engine),
            FetchGuard(settings.webhook_allow_hosts.split(",")),
            settings.lease_seconds,
        )
        fine_tuning_jobs = FineTuningRepository(engine)
        fine_tuning_jobs.on_end = webhooks.emit
        responses_repo.on_end = webhooks.emit
        fine_tuning = FineTuningService(
            settings,
            fine_tuning_jobs,
            files,
            models,
            projects,
            blob_store(settings, "fine_tuning"),
        )
        models.fine_tuned = fine_tuning.find_model
        # The key that signs generated images' URLs: made once, shared by every replica.
        projects.claim_setting(SECRET_SETTING, secrets.token_hex(32))
        images = ImagesService(
            settings,
            projects.get_setting(SECRET_SETTING) or "",
            blob_store(settings, "images"),
            ImageJobRepository(engine),
        )
        perception = PerceptionRunner(settings.max_image_pixels)
        uploads = UploadsService(engine, blobs, files, settings.max_file_bytes)
        media = MediaResolver(
            fetcher,
            files,
            perception,
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_file_bytes=settings.max_file_bytes,
        )
        prompts = PromptsService(engine)
        containers = ContainersService(
            settings,
            ContainerStore(engine),
            blob_store(settings, "containers"),
            files,
            sandbox(settings),
            RunQueue(engine),
        )
        embeddings = EmbeddingsService(embedder)
        batches = BatchesService(
            settings, BatchStore(engine), files, models, embeddings.serves, webhooks
        )
        container = cls(
            settings=settings,
            projects=projects,
            responses_repo=responses_repo,
            models=models,
            responses=ResponsesService(
                settings,
                models,
                responses_repo,
                vector_stores,
                web_provider(settings),
                fetcher,
                conversations,
                media,
                images,
                metrics,
                containers,
                prompts,
                Sealer(projects.get_setting(SECRET_SETTING) or ""),
            ),
            chat_completions=ChatCompletionsService(settings, models, media, metrics),
            files=files,
            vector_stores=vector_stores,
            embeddings=embeddings,
            uploads=uploads,
            conversations=conversations,
            stored_chat_completions=StoredChatCompletions(engine),
            completions=CompletionsService(models, metrics),
            key_cache=KeyCache(settings.key_cache_seconds),
            fine_tuning=fine_tuning,
            images=images,
            perception=perception,
            reconciler=Reconciler(file_rows, uploads, blobs, settings.orphan_grace_seconds),
            metrics=metrics,
            blobs=blobs,
            rate_limits=RateLimitRepository(engine),
            containers=containers,
            batches=batches,
            webhooks=webhooks,
            prompts=prompts,
        )
        batches.runner = LineRunner(
            container.responses,
            container.chat_completions,
            container.stored_chat_completions,
            container.completions,
            container.embeddings,
        )
        container.metrics.watch(container.engines, lambda: job_counts(engine))
        return container

    def engines(self) -> dict[str, dict[str, Any]]:
        """Every started engine runner (models, perception, the image pipeline) and its state."""
        engines: dict[str, dict[str, Any]] = self.models.engines()
        runner = self.perception.runner
        if runner.state != "stopped":
            engines["perception"] = runner.status()
        image_runner = getattr(self.images.loaded_backend(), "runner", None)
        if image_runner is not None and image_runner.state != "stopped":
            engines[image_runner.name] = image_runner.status()
        return engines


def sandbox(settings: Settings) -> Sandbox | None:
    """Where code_interpreter code runs; None when it is turned off."""
    if settings.code_interpreter_sandbox == "off":
        return None
    site = settings.code_interpreter_site
    return BubblewrapSandbox(settings.code_interpreter_python, site if site.is_dir() else None)


def vector_index(settings: Settings, engine: Engine, dimensions: int) -> VectorIndex:
    """pgvector in the state database when it is PostgreSQL, else sqlite-vec in its own file
    (vec0 read through one driver while Python's sqlite3 writes the same file gave
    intermittent "chunks iter error"s here)."""
    if engine.dialect.name == "postgresql":
        from kotae.providers.vector_index.pgvector import PgVectorIndex

        return PgVectorIndex(engine, dimensions)
    return SqliteVecIndex(settings.data_dir / "vectors.db", dimensions)
