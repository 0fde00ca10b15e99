"""`kotae models pull`: GGUF files, or diffusers pipelines for image generation, from the
Hugging Face Hub (or a mirror) into the data dir."""

from __future__ import annotations

from pathlib import Path

import httpx

from kotae.errors import BackendError, InvalidRequest, NotFound

# When a repo holds several quantisations and none is named: the usual good trade-offs.
PREFERRED_QUANTS = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q8_0")


def choose_gguf(files: list[str]) -> str:
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf"))
    if not ggufs:
        raise NotFound("The repository has no .gguf file.")
    for quant in PREFERRED_QUANTS:
        for name in ggufs:
            if quant.lower() in name.lower():
                return name
    return ggufs[0]


def pipeline_files(files: list[str]) -> list[str]:
    """What a diffusers pipeline needs: its index, each component's configs and tokenizer
    files, and safetensors weights (full precision when the repo also has fp16 copies)."""
    parts = [f for f in files if "/" in f and f.count("/") == 1]
    weights = [f for f in parts if f.endswith(".safetensors")]
    full = [f for f in weights if ".fp16." not in f]
    keep = [f for f in parts if f.endswith((".json", ".txt", ".model"))]
    return ["model_index.json", *sorted(keep), *sorted(full or weights)]


def pull_model(
    spec: str, models_dir: Path, *, endpoint: str | None = None, revision: str | None = None
) -> Path:
    """`owner/name[:file.gguf]` -> the local path, under models_dir/owner/name/: the GGUF
    file, or the directory of a diffusers pipeline (a repo with model_index.json)."""
    from huggingface_hub import errors as hub_errors

    repo, _, filename = spec.partition(":")
    if repo.count("/") != 1:
        raise InvalidRequest(f"'{spec}' is not owner/name[:file.gguf].")
    try:
        return _pull(repo, filename, models_dir, endpoint, revision)
    except (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError) as exc:
        raise NotFound(
            f"No repository '{repo}' (revision {revision or 'main'}) on the Hub."
        ) from exc
    except hub_errors.EntryNotFoundError as exc:
        raise NotFound(f"No file '{filename}' in '{repo}'.") from exc
    except hub_errors.OfflineModeIsEnabled as exc:
        raise BackendError(
            "The Hub is switched off here (HF_HUB_OFFLINE=1): unset it to download."
        ) from exc
    except (hub_errors.HfHubHTTPError, OSError) as exc:
        raise BackendError(f"Download from the Hub failed: {exc}") from exc
    except httpx.HTTPError as exc:
        # No network (or no such host): one line, not the transport's traceback.
        where = endpoint or "https://huggingface.co"
        raise BackendError(
            f"Could not reach the Hub at {where} ({type(exc).__name__}: {exc}). Check the "
            "network, or set KOTAE_HF_ENDPOINT to a mirror you can reach."
        ) from exc


def _pull(
    repo: str, filename: str, models_dir: Path, endpoint: str | None, revision: str | None
) -> Path:
    from huggingface_hub import HfApi, hf_hub_download

    target = models_dir / repo
    if not filename:
        files = HfApi(endpoint=endpoint).list_repo_files(repo, revision=revision)
        if "model_index.json" in files:
            target.mkdir(parents=True, exist_ok=True)
            for name in pipeline_files(files):
                hf_hub_download(
                    repo_id=repo,
                    filename=name,
                    revision=revision,
                    local_dir=target,
                    endpoint=endpoint,
                )
            return target
        filename = choose_gguf(files)
    target.mkdir(parents=True, exist_ok=True)
    path = hf_hub_download(
        repo_id=repo,
        filename=filename,
        revision=revision,
        local_dir=target,
        endpoint=endpoint,
    )
    return Path(path)
