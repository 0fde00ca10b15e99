"""What a model is on disk: its size and quantisation (for `kotae models list`), and removing
a pulled one (`kotae models rm`)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from kotae.config import Settings
from kotae.errors import InvalidRequest, NotFound
from kotae.services.models import ModelEntry, ModelRegistry

# Hub files name their quantisation (…Q4_K_M.gguf, …-f16.gguf); the header is the fallback.
QUANT_IN_NAME = re.compile(r"(?<![A-Za-z0-9])(I?Q\d+_[A-Z0-9_]+|I?Q\d+|BF16|F16|F32)", re.I)


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def quantisation(path: Path) -> str:
    found = QUANT_IN_NAME.search(path.stem)
    if found:
        return found.group(1).upper()
    try:
        import gguf

        field = gguf.GGUFReader(path).fields.get("general.file_type")
        if field is None:
            return "unknown"
        kind = gguf.LlamaFileType(int(field.parts[field.data[0]][0])).name
        return kind.removeprefix("MOSTLY_")
    except Exception:
        return "unknown"


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def describe(entry: ModelEntry) -> str:
    """`120.0 MB Q4_1` for a local file; `remote` for a model behind an engine's URL."""
    if entry.config.backend != "llama_cpp":
        return "remote"
    if entry.path is None or not entry.path.exists():
        return "-"
    return f"{human(size_of(entry.path))} {quantisation(entry.path)}"


def remove_pulled(settings: Settings, name: str) -> list[Path]:
    """Deletes a model that `kotae models pull` saved: its GGUF file (by model id or
    `owner/name:file.gguf`), or a pulled image pipeline (by `owner/name`). Models that ship in
    packages or are configured in kotae.toml are not files of kotae's to delete."""
    root = settings.models_dir.resolve()
    pipeline = root / name
    if "/" in name and ":" not in name and (pipeline / "model_index.json").is_file():
        shutil.rmtree(pipeline)
        _prune(pipeline.parent, root)
        return [pipeline]
    entry = ModelRegistry(settings).find(name)
    if entry is None:
        raise NotFound(f"No model '{name}' (kotae models list shows them).")
    path = entry.path.resolve() if entry.path else None
    if path is None or root not in path.parents:
        raise InvalidRequest(
            f"'{entry.config.id}' was not pulled into {root}: it comes from a package or "
            "kotae.toml, so kotae does not delete it."
        )
    removed = [path]
    path.unlink()
    # What huggingface_hub keeps beside a download in local_dir mode.
    for meta in path.parent.glob(f".cache/huggingface/download/{path.name}.*"):
        meta.unlink()
        removed.append(meta)
    _prune(path.parent, root)
    return removed


def _prune(folder: Path, root: Path) -> None:
    """Empty folders (and huggingface_hub's cache folder once it describes no download) up
    to the models dir."""
    while folder != root and root in folder.parents:
        cache = folder / ".cache"
        # Its .metadata files describe downloads; locks and .gitignore are bookkeeping.
        if cache.is_dir() and not any(cache.rglob("*.metadata")):
            shutil.rmtree(cache)
        if any(folder.iterdir()):
            return
        folder.rmdir()
        folder = folder.parent


def ensure_local(settings: Settings, spec: str) -> tuple[Settings, str]:
    """What `serve --model` and `run` take: a model id or alias, a `.gguf` path, or a Hub repo
    `owner/name[:file.gguf]` (used when already pulled, else pulled now, with progress bars).
    Returns the settings that serve it and its model id."""
    from kotae.config import ModelConfig
    from kotae.errors import ModelNotFound
    from kotae.providers.hub import choose_gguf, pull_model

    path = Path(spec).expanduser()
    if spec.endswith(".gguf") and path.is_file():
        config = ModelConfig(id=path.stem, backend="llama_cpp", path=str(path.resolve()))
        models = [m for m in settings.models if m.id != config.id]
        return settings.model_copy(update={"models": [*models, config]}), config.id
    try:
        return settings, ModelRegistry(settings).resolve(spec).config.id
    except ModelNotFound:
        pass
    repo, _, filename = spec.partition(":")
    if repo.count("/") != 1:
        raise NotFound(
            f"No model '{spec}': give a model id (kotae models list), a .gguf file, or a Hub "
            "repository as owner/name[:file.gguf]."
        )
    local = settings.models_dir / repo
    names = sorted(p.name for p in local.glob("*.gguf")) if local.is_dir() else []
    if filename and filename in names:
        return settings, Path(filename).stem
    if not filename and names:
        return settings, Path(choose_gguf(names)).stem
    pulled = pull_model(spec, settings.models_dir, endpoint=settings.hf_endpoint)
    if pulled.is_dir():
        raise InvalidRequest(
            f"'{repo}' is an image pipeline, not a chat model: set KOTAE_IMAGE_MODEL={repo}."
        )
    print(f"kotae: pulled {pulled}", flush=True)
    return settings, pulled.stem
