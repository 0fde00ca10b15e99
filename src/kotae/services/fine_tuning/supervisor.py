"""The trainer's supervision: files validated in threads of their own, one training process
at a time (a child running `kotae.training.run`), its progress recorded as events, metrics and
checkpoints, and its adapters kept as artifacts.

The state lives in the database. A running job is leased by the process that trains it; one
whose lease lapsed (that process died) is failed with `server_restarted` by whichever process
notices, never by a process merely starting. Jobs still queued run when a supervisor is free."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kotae.config import Settings
from kotae.errors import InvalidRequest
from kotae.providers.inference.llama_cpp import FALLBACK_TEMPLATE
from kotae.services.files import FilesService
from kotae.services.fine_tuning.artifacts import Artifacts
from kotae.services.fine_tuning.records import ACTIVE, STOPPED, ended, job_event
from kotae.storage import leases
from kotae.storage.repositories.fine_tuning import FineTuningRepository
from kotae.storage.repositories.projects import ProjectRepository
from kotae.training import hyperparameters
from kotae.training.data import load_examples, load_preferences

log = logging.getLogger("kotae.fine_tuning")


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        repo: FineTuningRepository,
        files: FilesService,
        projects: ProjectRepository,
        artifacts: Artifacts,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._files = files
        self._projects = projects
        self._artifacts = artifacts
        self._validating: set[str] = set()
        self.started = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self.owner = secrets.token_hex(8)  # this process, as the trainer of what it runs
        self._running_id: str | None = None
        self._lock = threading.Lock()

    def kill(self, job: str) -> None:
        """Stops the training process if it trains `job` (cancelled)."""
        with self._lock:
            if self._running_id == job and self._proc is not None:
                self._proc.kill()

    def validate_soon(self, row: dict[str, Any]) -> None:
        """Files are checked at once, in their own thread: not behind a job that trains.
        Validation is safe to repeat: two workers may both check a job, one writes it."""
        if row["id"] in self._validating:
            return
        self._validating.add(row["id"])

        def run() -> None:
            try:
                self._validate(row)
            except Exception as exc:
                log.exception("validating fine-tuning job %s failed", row["id"])
                self._fail(row["id"], "internal_error", f"{type(exc).__name__}: {exc}")
            finally:
                self._validating.discard(row["id"])
            self._wake.set()

        threading.Thread(target=run, name=f"validate-{row['id']}", daemon=True).start()

    def start(self) -> None:
        self.started = True
        self._fail_lapsed()
        self._thread = threading.Thread(target=self._loop, name="fine-tuning", daemon=True)
        self._thread.start()
        threading.Thread(target=self._keep_leases, name="fine-tuning-leases", daemon=True).start()
        threading.Thread(target=self._find_new, name="fine-tuning-new", daemon=True).start()

    def _find_new(self) -> None:
        """Jobs to validate that an API replica (`serve --no-worker`) created or a restart
        left, found every second: not behind a job that trains."""
        while True:
            try:
                for row in self._repo.with_status(("validating_files",)):
                    self.validate_soon(row)
            except Exception:
                log.exception("looking for fine-tuning jobs to validate failed")
            if self._stopping.wait(1.0):
                return

    def _fail_lapsed(self) -> None:
        for row in self._repo.lapsed_running():
            error = {"code": "server_restarted", "message": STOPPED, "param": None}
            body = ended(row["body"], "failed", error=error)
            if self._repo.update(
                row["id"],
                body,
                events=[job_event("The server restarted during training.", "error")],
                only_if=("running",),
                owner=None,
                lease_expires_at=None,
            ):
                log.warning("fine-tuning job %s: its trainer's process stopped; failed", row["id"])

    def _keep_leases(self) -> None:
        seconds = self._settings.lease_seconds
        while not self._stopping.wait(max(0.2, seconds / 3)):
            try:
                self._repo.renew(self.owner, seconds)
                self._fail_lapsed()
            except Exception:
                log.exception("renewing fine-tuning leases failed")

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        with self._lock:
            if self._proc is not None:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            row = self._repo.next_queued()
            if row is None:
                self._wake.wait(timeout=2.0)
                self._wake.clear()
                continue
            try:
                self._train(row)
            except Exception as exc:  # never leave a job active because of a bug here
                log.exception("fine-tuning job %s failed", row["id"])
                self._fail(row["id"], "internal_error", f"{type(exc).__name__}: {exc}")

    def _current(self, job: str) -> dict[str, Any]:
        row = self._repo.get(None, job)
        assert row is not None
        return row

    def _fail(self, job: str, code: str, message: str, param: str | None = None) -> None:
        row = self._current(job)
        body = ended(
            row["body"], "failed", error={"code": code, "message": message, "param": param}
        )
        self._repo.update(
            job,
            body,
            events=[job_event(f"Fine-tuning job failed: {message}", "error")],
            only_if=ACTIVE,
        )

    def _validate(self, row: dict[str, Any]) -> None:
        body = row["body"]
        events = [job_event(f"Validating training file: {body['training_file']}")]
        examples = {}
        for param in ("training_file", "validation_file"):
            file_id = body.get(param)
            if file_id is None:
                continue
            found = self._files.find_row(row["project_id"], file_id)
            if found is None:
                self._fail(row["id"], "invalid_file", f"File {file_id} was deleted.", param)
                return
            load = load_preferences if row["spec"].get("method") == "dpo" else load_examples
            try:
                examples[param] = load(self._files.read_all(found), param)
            except InvalidRequest as exc:
                self._fail(row["id"], exc.code or "invalid_training_file", exc.message, param)
                return
        hp = hyperparameters.resolve(body["hyperparameters"], len(examples["training_file"]))
        method = row["spec"].get("method", "supervised")
        body = {
            **body,
            "status": "queued",
            "hyperparameters": hp,
            "method": {"type": method, method: {"hyperparameters": hp}},
        }
        # The examples go to the blob store beside the job's adapters, not into its row.
        data = json.dumps(
            {"train": examples["training_file"], "valid": examples.get("validation_file")}
        ).encode()
        key = f"{row['id']}/examples.json"
        self._artifacts.store.put(key, io.BytesIO(data), len(data))
        spec = {**row["spec"], "examples_key": key, "hyperparameters": hp}
        events.append(job_event("Files validated, moving job to queued state"))
        self._repo.update(row["id"], body, events=events, only_if=("validating_files",), spec=spec)

    def _train(self, row: dict[str, Any]) -> None:
        job = row["id"]
        body = {**row["body"], "status": "running"}
        if not self._repo.update(
            job,
            body,
            events=[job_event("Fine-tuning job started")],
            only_if=("queued",),
            **leases.held(self.owner, self._settings.lease_seconds),
        ):
            return
        from kotae.training.gguf_adapter import base_architecture

        out = self._artifacts.root / job
        out.mkdir(parents=True, exist_ok=True)
        spec = dict(row["spec"])
        examples = self._artifacts.fetch(spec["examples_key"])
        if examples is None:
            self._fail(job, "invalid_file", "The job's validated examples are gone.")
            return
        spec.update(
            examples_path=str(examples),
            seed=body["seed"],
            out_dir=str(out),
            hf_dir=str(self._settings.data_dir / "hf" / spec["base_id"]),
            template=FALLBACK_TEMPLATE,
            arch=base_architecture(Path(spec["base_gguf"])),
            parent_pid=os.getpid(),
        )
        (out / "spec.json").write_text(json.dumps(spec))
        started = time.time()
        metrics: list[dict[str, Any]] = []
        outcome: dict[str, Any] | None = None
        buffer: dict[str, Any] = {"events": [], "fields": {}, "at": time.monotonic()}
        with open(out / "train.log", "a") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kotae.training.run", str(out / "spec.json")],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
            with self._lock:
                self._proc, self._running_id = proc, job
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("event") in ("done", "error"):
                        outcome = event
                    else:
                        self._progress(job, spec, event, started, metrics, buffer)
                proc.wait()
                self._flush(job, buffer)
            finally:
                with self._lock:
                    self._proc, self._running_id = None, None
        if outcome is None or outcome["event"] == "error":
            if self._current(job)["status"] == "cancelled":
                return
            if self._stopping.is_set():
                self._fail(job, "server_restarted", STOPPED)
                return
            message = (outcome or {}).get("message") or (
                f"The training process ended with code {proc.returncode}; see {out / 'train.log'}."
            )
            code = (outcome or {}).get("code") or "training_failed"
            param = "training_file" if code == "invalid_training_file" else None
            self._fail(job, code, message, param)
            return
        self._succeed(job, spec, outcome, metrics)

    def _model_name(self, project_id: str, spec: dict[str, Any], job: str) -> str:
        project = re.sub(r"[^A-Za-z0-9_-]", "-", self._projects.project_name(project_id))
        return f"ft:{spec['base_id']}:{project}:{spec['suffix']}:{job[6:14]}"

    def _flush(self, job: str, buffer: dict[str, Any]) -> None:
        """Step events are written in batches (about once a second): the trainer shares the
        machine's cores, and a database write per step slowed its steps."""
        if not buffer["events"]:
            return
        row = self._current(job)
        body = {**row["body"], **buffer["fields"]}
        self._repo.update(job, body, events=buffer["events"], only_if=("running",))
        buffer["events"], buffer["fields"] = [], {}
        buffer["at"] = time.monotonic()

    def _progress(
        self,
        job: str,
        spec: dict[str, Any],
        event: dict[str, Any],
        started: float,
        metrics: list[dict[str, Any]],
        buffer: dict[str, Any],
    ) -> None:
        kind = event.get("event")
        if kind == "step":
            step, total = event["step"], event["total_steps"]
            data: dict[str, Any] = {
                k: event[k]
                for k in (
                    "step",
                    "train_loss",
                    "train_mean_token_accuracy",
                    "valid_loss",
                    "valid_mean_token_accuracy",
                    "full_valid_loss",
                    "full_valid_mean_token_accuracy",
                    "train_reward_margin",
                    "train_reward_accuracy",
                    "valid_reward_margin",
                )
                if k in event
            }
            data["total_steps"] = total
            metrics.append(data)
            per_step = (time.time() - started) / step
            buffer["fields"] = {
                "trained_tokens": event["trained_tokens"],
                "estimated_finish": int(time.time() + per_step * (total - step)),
            }
            message = f"Step {step}/{total}: training loss={event['train_loss']:.4f}"
            if "valid_loss" in event:
                message += f", validation loss={event['valid_loss']:.4f}"
            buffer["events"].append(job_event(message, data=data))
            if time.monotonic() - buffer["at"] >= 1.0:
                self._flush(job, buffer)
            return
        self._flush(job, buffer)
        row = self._current(job)
        if row["status"] != "running":
            return
        if kind == "loaded":
            self._repo.add_events(
                job, [job_event(f"Base model loaded in {event['seconds']} s on {event['device']}")]
            )
        elif kind == "checkpoint":
            step = event["metrics"]["step"]
            model = f"{self._model_name(row['project_id'], spec, job)}:ckpt-step-{step}"
            checkpoint = {
                "id": "ftckpt_" + secrets.token_hex(12),
                "object": "fine_tuning.job.checkpoint",
                "created_at": int(time.time()),
                "fine_tuned_model_checkpoint": model,
                "fine_tuning_job_id": job,
                "metrics": event["metrics"],
                "step_number": step,
            }
            self._repo.add_checkpoint(
                job,
                {
                    "id": checkpoint["id"],
                    "model": model,
                    "path": self._artifacts.keep(Path(event["path"]) / "adapter.gguf"),
                    "data": checkpoint,
                },
            )
            # The trainer keeps the last three epochs' adapters on disk; so does the list.
            checkpoints = self._repo.checkpoints(job)
            self._repo.drop_checkpoints(job, [c["id"] for c in checkpoints[:3]])
            for dropped in checkpoints[3:]:
                if not Path(dropped["path"]).is_absolute():
                    self._artifacts.store.delete(dropped["path"])
            self._repo.add_events(job, [job_event(f"Checkpoint created at step {step}")])

    def _succeed(
        self, job: str, spec: dict[str, Any], outcome: dict[str, Any], metrics: list[dict[str, Any]]
    ) -> None:
        row = self._current(job)
        if row["status"] != "running":
            return
        model = self._model_name(row["project_id"], spec, job)
        csv = io.StringIO()
        csv.write("step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n")
        for m in metrics:
            csv.write(
                f"{m['step']},{m['train_loss']},{m.get('train_mean_token_accuracy', '')},"
                f"{m.get('valid_loss', '')},{m.get('valid_mean_token_accuracy', '')}\n"
            )
        result = asyncio.run(
            self._files.create(
                row["project_id"],
                io.BytesIO(csv.getvalue().encode()),
                "step_metrics.csv",
                "fine-tune-results",
                None,
                "text/csv",
            )
        )
        body = ended(
            row["body"],
            "succeeded",
            fine_tuned_model=model,
            trained_tokens=outcome["trained_tokens"],
            result_files=[result.id],
        )
        spec = {
            **row["spec"],
            "adapter_path": self._artifacts.keep(Path(outcome["path"]) / "adapter.gguf"),
        }
        self._repo.update(
            job,
            body,
            events=[
                job_event(f"New fine-tuned model created: {model}"),
                job_event("The job has successfully completed"),
            ],
            only_if=("running",),
            fine_tuned_model=model,
            spec=spec,
        )
