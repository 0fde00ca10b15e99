"""Fine-tuning jobs as the API shows them: create, list, retrieve, cancel, events,
checkpoints, and the fine-tuned models they make. The training itself is supervised in
`supervisor.py`."""

from __future__ import annotations

import asyncio
import random
import re
import time
from pathlib import Path
from typing import Any

from kotae.config import Settings
from kotae.errors import InvalidRequest, KotaeError, NotFound
from kotae.providers.blobs.base import BlobStore
from kotae.schemas.fine_tuning import CreateFineTuningJob
from kotae.services.files import FilesService
from kotae.services.fine_tuning.artifacts import Artifacts
from kotae.services.fine_tuning.records import ACTIVE, ended, job_event, job_id
from kotae.services.fine_tuning.supervisor import Supervisor
from kotae.services.models import ModelRegistry
from kotae.storage.repositories.fine_tuning import FineTuningRepository
from kotae.storage.repositories.projects import ProjectRepository
from kotae.training import hyperparameters

SUFFIX = re.compile(r"^[A-Za-z0-9_.-]*$")


class FineTuningService:
    def __init__(
        self,
        settings: Settings,
        repo: FineTuningRepository,
        files: FilesService,
        registry: ModelRegistry,
        projects: ProjectRepository,
        artifacts: BlobStore,
    ) -> None:
        self._repo = repo
        self._files = files
        self._registry = registry
        self._projects = projects
        # Examples and adapters: kept in the blob store (S3 when replicas share no disk),
        # under keys "<job>/..."; the local folder is their cache and the trainer's.
        self._artifacts = Artifacts(artifacts, settings.data_dir / "fine_tuning")
        self._supervisor = Supervisor(settings, repo, files, projects, self._artifacts)

    def start(self) -> None:
        """Validates and trains jobs in this process (a worker, or plain `kotae serve`)."""
        self._supervisor.start()

    def stop(self) -> None:
        self._supervisor.stop()

    # -- API ---------------------------------------------------------------------------------

    async def create(self, project_id: str, req: CreateFineTuningJob) -> dict[str, Any]:
        hp = self._hyperparameters(req)
        method = req.method.type if req.method is not None else "supervised"
        entry = self._trainable_base(req.model)
        for param, file_id in (
            ("training_file", req.training_file),
            ("validation_file", req.validation_file),
        ):
            if file_id is None:
                continue
            row = await asyncio.to_thread(self._files.find_row, project_id, file_id)
            if row is None:
                raise InvalidRequest(f"Invalid file ID: {file_id}. No such file.", param=param)
            if row["purpose"] != "fine-tune":
                raise InvalidRequest(
                    f"File {file_id} has purpose '{row['purpose']}'; fine-tuning files need "
                    "purpose 'fine-tune'.",
                    param=param,
                )
        from kotae.training.gguf_adapter import check_trainable

        assert entry.path is not None
        await asyncio.to_thread(check_trainable, entry.path)
        if req.suffix is not None and not SUFFIX.match(req.suffix):
            raise InvalidRequest(
                "suffix may hold only letters, digits, '-', '_' and '.'.", param="suffix"
            )
        if req.integrations:
            raise InvalidRequest(
                "Integrations (Weights & Biases) are not supported by this server.",
                param="integrations",
            )
        new_id = job_id()
        now = int(time.time())
        seed = req.seed if req.seed is not None else random.randrange(2**31)
        body: dict[str, Any] = {
            "id": new_id,
            "object": "fine_tuning.job",
            "created_at": now,
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": hp,
            "model": entry.config.id,
            "organization_id": project_id,
            "result_files": [],
            "seed": seed,
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": req.training_file,
            "validation_file": req.validation_file,
            "estimated_finish": None,
            "integrations": None,
            "metadata": req.metadata,
            "method": {"type": method, method: {"hyperparameters": hp}},
            "user_provided_suffix": req.suffix,
        }
        assert entry.path is not None
        spec = {
            "base_gguf": str(entry.path),
            "base_id": entry.config.id,
            "context_window": entry.config.context_window,
            "suffix": req.suffix or "",
            "method": method,
        }
        row = {
            "id": new_id,
            "project_id": project_id,
            "created_at": now,
            "status": "validating_files",
            "fine_tuned_model": None,
            "model_deleted": False,
            "body": body,
            "spec": spec,
        }
        await asyncio.to_thread(
            self._repo.insert, row, job_event(f"Created fine-tuning job: {new_id}")
        )
        if self._supervisor.started:  # else a worker's scheduler picks it up from the database
            self._supervisor.validate_soon(row)
        return body

    def _hyperparameters(self, req: CreateFineTuningJob) -> dict[str, Any]:
        method = req.method
        if method is not None and req.hyperparameters is not None:
            raise InvalidRequest(
                "Send hyperparameters inside method, not at the top level as well.",
                param="hyperparameters",
            )
        if method is None:
            return hyperparameters.check(req.hyperparameters or {}, "hyperparameters")
        if method.type == "reinforcement":
            raise InvalidRequest(
                "The 'reinforcement' method is not supported by this server; use 'supervised' "
                "or 'dpo'.",
                param="method.type",
            )
        options = (method.supervised if method.type == "supervised" else method.dpo) or {}
        if set(options) - {"hyperparameters"}:
            raise InvalidRequest(
                f"Unknown field in method.{method.type}.", param=f"method.{method.type}"
            )
        return hyperparameters.check(
            options.get("hyperparameters") or {},
            f"method.{method.type}.hyperparameters",
            dpo=method.type == "dpo",
        )

    def _trainable_base(self, model: str) -> Any:
        try:
            entry = self._registry.resolve(model)
        except KotaeError as exc:
            raise InvalidRequest(
                f"Model {model} is not available for fine-tuning or does not exist.",
                param="model",
                code="model_not_available",
            ) from exc
        if entry.config.backend != "llama_cpp" or entry.path is None or entry.lora is not None:
            raise InvalidRequest(
                f"Model {model} is not available for fine-tuning: only embedded GGUF models "
                "can be trained here.",
                param="model",
                code="model_not_available",
            )
        return entry

    async def retrieve(self, project_id: str, job: str) -> dict[str, Any]:
        row = await asyncio.to_thread(self._repo.get, project_id, job)
        if row is None:
            raise NotFound(f"Fine-tuning job {job} not found.", param="fine_tuning_job_id")
        return dict(row["body"])

    async def list_jobs(
        self, project_id: str, metadata: dict[str, str] | None
    ) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(self._repo.list_jobs, project_id)
        bodies = [r["body"] for r in rows]
        if metadata:
            bodies = [
                b
                for b in bodies
                if all((b.get("metadata") or {}).get(k) == v for k, v in metadata.items())
            ]
        return bodies

    async def events(self, project_id: str, job: str) -> list[dict[str, Any]]:
        await self.retrieve(project_id, job)
        return await asyncio.to_thread(self._repo.events, job)

    async def checkpoints(self, project_id: str, job: str) -> list[dict[str, Any]]:
        await self.retrieve(project_id, job)
        rows = await asyncio.to_thread(self._repo.checkpoints, job)
        return [r["data"] for r in rows]

    async def cancel(self, project_id: str, job: str) -> dict[str, Any]:
        body = await self.retrieve(project_id, job)
        if body["status"] not in ACTIVE:
            raise InvalidRequest(
                f"Job {job} has already {body['status']}; it cannot be cancelled.",
                param="fine_tuning_job_id",
            )
        body = ended(body, "cancelled")
        changed = await asyncio.to_thread(
            self._repo.update,
            job,
            body,
            events=[job_event("Fine-tuning job cancelled")],
            only_if=ACTIVE,
        )
        if not changed:  # it finished meanwhile
            return await self.retrieve(project_id, job)
        self._supervisor.kill(job)
        return body

    # -- fine-tuned models -------------------------------------------------------------------

    def find_model(self, project_id: str, model: str) -> tuple[str, Path] | None:
        """(base model id, GGUF adapter) for a fine-tuned model (or checkpoint) of this
        project; None for anything else, including another project's. The adapter may be
        downloaded from the blob store the first time: callers resolve off the event loop."""
        hit = self._repo.find_model(project_id, model)
        if hit is None:
            return None
        job, adapter = hit
        if not adapter:
            return None
        path = self._artifacts.fetch(adapter)
        return (job["spec"]["base_id"], path) if path is not None else None

    def models(self, project_id: str) -> list[dict[str, Any]]:
        return [
            {
                "id": row["fine_tuned_model"],
                "object": "model",
                "created": row["body"].get("finished_at") or row["created_at"],
                "owned_by": self._projects.project_name(project_id),
            }
            for row in self._repo.models(project_id)
        ]

    async def delete_model(self, project_id: str, model: str) -> dict[str, Any]:
        row = await asyncio.to_thread(self._repo.delete_model, project_id, model)
        if row is None:
            raise NotFound(
                f"The model '{model}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        await self._registry.forget_fine_tuned(model)
        await asyncio.to_thread(self._artifacts.forget, row["id"])
        return {"id": model, "object": "model", "deleted": True}
