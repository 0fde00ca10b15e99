"""Tables. Every stored object carries its project; queries always filter by it."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256), default="")
    # sha256 of the key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redacted: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # An admin key may also manage projects and keys (/v1/organization/...).
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class StoredResponse(Base):
    """One response: its own body (with its own output), never the thread's history."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    previous_response_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    background: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    # While it runs: the process that runs it, and until when that process vouches for it.
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Orders responses made in the same second (created_at is whole seconds).
    created_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Cancel asked on a replica that does not run it: its owner stops it.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A background request waiting for a worker (JSON text); cleared when one claims it.
    request: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_responses_project_expires", "project_id", "expires_at"),
        Index("ix_responses_project_created", "project_id", "created_at"),
        Index("ix_responses_status_lease", "status", "lease_expires_at"),
    )


class ImageJob(Base):
    """An image request handed to a worker; `outcome` is its answer or its error."""

    __tablename__ = "image_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    created_ns: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, done, cancelled
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_image_jobs_status", "status", "created_ns"),)


class RateWindow(Base):
    """Requests a project made in one minute (for `rate_limit_rpm`, across replicas)."""

    __tablename__ = "rate_windows"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer)


class ResponseEvent(Base):
    """A background response's stream events, numbered as the client saw them."""

    __tablename__ = "response_events"

    response_id: Mapped[str] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)


class ResponseInputItem(Base):
    """The input items a response added to its thread, in order."""

    __tablename__ = "response_input_items"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_input_items_response_position", "response_id", "position"),
        Index("ix_input_items_item", "item_id"),
    )


class ResponseOutputItem(Base):
    """A finished response's output items, by id: what an `item_reference` names."""

    __tablename__ = "response_output_items"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_output_items_item", "item_id"),
        Index("ix_output_items_response", "response_id"),
    )


class Setting(Base):
    """Small key/value facts about this installation (e.g. the default project's id)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class StoredFile(Base):
    """An uploaded file; its bytes live in the blob store under `blob_key`."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(1024))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    blob_key: Mapped[str] = mapped_column(String(256))
    mime_type: Mapped[str | None] = mapped_column(String(256), nullable=True)
    # None: processed. "error" with details when the reconciliation found its blob missing.
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status_details: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_files_project_created", "project_id", "created_at"),)


class VectorStore(Base):
    __tablename__ = "vector_stores"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_active_at: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    expires_after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class VectorStoreFile(Base):
    """A file in a store: its ingestion state, attributes and chunking."""

    __tablename__ = "vector_store_files"

    store_id: Mapped[str] = mapped_column(
        ForeignKey("vector_stores.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    chunking: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)  # while ingesting
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_vs_files_status", "status"),)


class VectorStoreFileBatch(Base):
    __tablename__ = "vector_store_file_batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("vector_stores.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)


class VectorStoreChunk(Base):
    __tablename__ = "vector_store_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(String(64))
    file_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_vs_chunks_store_file", "store_id", "file_id", "position"),)


class Upload(Base):
    """A large file arriving in parts (the Uploads API)."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(1024))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parts: Mapped[dict[str, Any]] = mapped_column(JSON)  # part id -> size


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)


class ConversationItem(Base):
    __tablename__ = "conversation_items"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_conversation_items_conv", "conversation_id", "pk"),
        Index("ix_conversation_items_item", "item_id"),
    )


class FineTuningJob(Base):
    """`body` is the job as the API shows it; `spec` what the trainer needs (never shown)."""

    __tablename__ = "fine_tuning_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(32))
    fine_tuned_model: Mapped[str | None] = mapped_column(String(512), nullable=True)
    model_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)  # while training
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_ft_jobs_project", "project_id", "created_at"),
        Index("ix_ft_jobs_status", "status", "created_at"),
    )


class FineTuningEvent(Base):
    __tablename__ = "fine_tuning_events"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"))
    id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_ft_events_job", "job_id", "pk"),)


class FineTuningCheckpoint(Base):
    __tablename__ = "fine_tuning_checkpoints"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"))
    id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(String(1024))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_ft_checkpoints_job", "job_id", "pk"),
        Index("ix_ft_checkpoints_model", "model"),
    )


class StoredChatCompletion(Base):
    """A chat completion made with `store: true`: `body` as it was answered (with its
    metadata), `messages` the request's messages."""

    __tablename__ = "chat_completions"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE")
    )
    created_at: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(256))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    __table_args__ = (Index("ix_chat_completions_project", "project_id", "pk"),)


class CodeContainer(Base):
    """A code interpreter's container: its settings and when it was last used (it expires
    `expires_minutes` after that)."""

    __tablename__ = "containers"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_active_at: Mapped[int] = mapped_column(BigInteger)
    expires_minutes: Mapped[int] = mapped_column(Integer)
    memory_limit: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))  # running | expired
    # The worker whose process holds the container's live Python, and until when (its lease).
    host: Mapped[str | None] = mapped_column(String(64), nullable=True)
    host_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_containers_project", "project_id", "pk"),)


class ContainerRun(Base):
    """Code an API replica (`serve --no-worker`) hands to the worker hosting its container;
    `outcome` is what it printed and the files it left."""

    __tablename__ = "container_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    container_id: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(String(64))
    created_ns: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, done, cancelled
    code: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_container_runs_status", "status", "created_ns"),)


class ContainerFile(Base):
    """A file in a container's /mnt/data, kept in the blob store under `blob_key`."""

    __tablename__ = "container_files"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    container_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("containers.id", ondelete="CASCADE")
    )
    project_id: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))  # user | assistant
    created_at: Mapped[int] = mapped_column(BigInteger)
    blob_key: Mapped[str] = mapped_column(String(256))

    __table_args__ = (Index("ix_container_files_container", "container_id", "pk"),)


class BatchRow(Base):
    """A batch of /v1/batches: `body` is the Batch object as the API shows it (its status,
    timestamps, counts and file ids kept current); the lease is held while a worker
    validates or finalizes it."""

    __tablename__ = "batches"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_batches_project", "project_id", "pk"),
        Index("ix_batches_status", "status"),
    )


class BatchLine(Base):
    """One request of a batch: queued, running (leased), done (`result` holds its answer or
    error), or cancelled. A done line is never run again."""

    __tablename__ = "batch_lines"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(64))
    line: Mapped[int] = mapped_column(Integer)
    custom_id: Mapped[str] = mapped_column(String(512))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        UniqueConstraint("batch_id", "line", name="uq_batch_lines_line"),
        Index("ix_batch_lines_status", "batch_id", "status", "line"),
    )


class WebhookEndpointRow(Base):
    """Where a project's events are sent, signed with `secret` (and, for a while after a
    rotation, with `old_secret` too)."""

    __tablename__ = "webhook_endpoints"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(256))
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[Any]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(128))
    old_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    old_secret_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_webhook_endpoints_project", "project_id", "pk"),)


class WebhookDelivery(Base):
    """One event owed to one endpoint: pending (retried with backoff), delivered or failed."""

    __tablename__ = "webhook_deliveries"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint_id: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_project", "project_id", "pk"),
    )


class PromptVersion(Base):
    """One version of a reusable prompt: `body` holds its instructions, input messages,
    model and variables' defaults."""

    __tablename__ = "prompts"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE")
    )
    created_at: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("id", "version", name="uq_prompts_version"),
        Index("ix_prompts_project", "project_id", "id", "version"),
    )
