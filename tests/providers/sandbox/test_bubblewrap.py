"""The bubblewrap sandbox against hostile code: each attack is contained, the call ends with a
clear error, and the sandbox (and the next call, and another container) keeps working."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kotae.config import Settings
from kotae.providers.sandbox import seccomp
from kotae.providers.sandbox.base import Limits, Session
from kotae.providers.sandbox.bubblewrap import BubblewrapSandbox

SETTINGS = Settings()
SANDBOX = BubblewrapSandbox(SETTINGS.code_interpreter_python, SETTINGS.code_interpreter_site)
LIMITS = Limits(
    memory_bytes=1 << 30, cpu_seconds=3, wall_seconds=8, processes=32, disk_bytes=64 << 20
)

pytestmark = [
    pytest.mark.skipif(SANDBOX.missing() is not None, reason=f"no sandbox: {SANDBOX.missing()}"),
    pytest.mark.anyio,
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def roots() -> Iterator[Path]:
    # Under /tmp itself: as root the sandbox runs as another user, who must reach its files.
    path = Path(tempfile.mkdtemp(prefix="kotae-sandbox-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _session(root: Path, key: str = "cntr_a") -> Session:
    return await SANDBOX.start(root / key, key, LIMITS)


@pytest.fixture
async def session(roots: Path) -> AsyncIterator[Session]:
    s = await _session(roots)
    yield s
    await s.close()


async def test_state_persists_and_last_expression_prints(session: Session) -> None:
    first = await session.run("x = 41\nprint('hello')")
    assert first.logs == "hello\n" and first.error is None
    second = await session.run("x + 1")
    assert second.logs == "42\n"


async def test_error_is_a_traceback_of_the_code_only(session: Session) -> None:
    ran = await session.run("def f():\n    return 1 / 0\nf()")
    assert ran.error is not None and "ZeroDivisionError" in ran.error
    assert "kernel" not in ran.logs and 'File "<code>", line 2' in ran.logs
    assert not ran.ended and (await session.run("print('still here')")).logs == "still here\n"


async def test_plot_comes_back_as_png_and_file(session: Session, roots: Path) -> None:
    ran = await session.run(
        "import numpy as np, pandas as pd, matplotlib.pyplot as plt\n"
        "df = pd.DataFrame({'x': np.arange(5), 'y': np.arange(5) ** 2})\n"
        "plt.plot(df.x, df.y)\n"
        "int(df.y.sum())"
    )
    assert ran.error is None, ran.logs
    assert ran.logs.strip() == "30"
    assert ran.images and ran.images[0].startswith(b"\x89PNG")
    assert (roots / "cntr_a" / "data" / "figure-1.png").read_bytes() == ran.images[0]


async def test_secrets_of_the_host_are_not_there(roots: Path) -> None:
    os.environ["KOTAE_TEST_SECRET"] = "sk-should-never-show"
    try:
        other = await _session(roots, "cntr_env")
        code = (
            "import os\n"
            "print(sorted(os.listdir('/')))\n"
            "print(open('/proc/1/environ', 'rb').read())\n"
            "print(dict(os.environ))\n"
            "for path in ['/etc/shadow', '/etc/passwd', '/root', '/work', "
            f"'{Path.home()}', '{SETTINGS.data_dir}', '{Path(sys.prefix)}']:\n"
            "    print(path, os.path.exists(path))"
        )
        ran = await other.run(code)
        await other.close()
    finally:
        del os.environ["KOTAE_TEST_SECRET"]
    assert ran.error is None, ran.logs
    assert "sk-should-never-show" not in ran.logs
    for line in ran.logs.splitlines()[3:]:
        assert line.endswith("False"), line
    assert "'work'" not in ran.logs.splitlines()[0] and "'root'" not in ran.logs.splitlines()[0]


async def test_no_network_not_even_loopback(session: Session) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        ran = await session.run(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
        )
        assert ran.error is not None and "ConnectionRefused" in ran.error
        ran = await session.run(
            "import socket\nsocket.create_connection(('93.184.216.34', 80), timeout=2)"
        )
        assert ran.error is not None and "unreachable" in ran.error.lower()
    finally:
        listener.close()


async def test_namespaces_and_mounts_are_refused(session: Session) -> None:
    ran = await session.run(
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.unshare(0x10000000), ctypes.get_errno())\n"  # CLONE_NEWUSER
        "print(libc.mount(b'none', b'/mnt', b'tmpfs', 0, None), ctypes.get_errno())\n"
        "print(libc.ptrace(16, 1, 0, 0), ctypes.get_errno())"  # PTRACE_ATTACH to init
    )
    assert ran.error is None, ran.logs
    assert ran.logs.split() == ["-1", "1"] * 3  # each -1 with EPERM (seccomp)
    ran = await session.run("open('/usr/evil', 'w')")
    assert ran.error is not None and "Read-only file system" in ran.error


async def test_fork_bomb(session: Session) -> None:
    ran = await session.run("import os\nwhile True:\n    os.fork()")
    assert ran.error is not None and "Resource temporarily unavailable" in ran.error
    assert (await session.run("import os; print(len(os.listdir('/proc')))")).error is None


async def test_huge_allocation(session: Session) -> None:
    ran = await session.run("x = bytearray(50 * 2**30)")
    assert ran.error is not None and "MemoryError" in ran.error
    assert (await session.run("print(1)")).logs == "1\n"


async def test_infinite_loop_stops_on_cpu_time(session: Session) -> None:
    ran = await session.run("while True:\n    pass")
    assert ran.error is not None and "CPU time limit" in ran.error
    assert (await session.run("print(2)")).logs == "2\n"


async def test_sleeping_past_the_wall_clock_kills_the_tree(roots: Path) -> None:
    s = await SANDBOX.start(roots / "cntr_t", "cntr_t", replace(LIMITS, wall_seconds=1.5))
    ran = await s.run(
        "import subprocess, time\nsubprocess.Popen(['sleep', '100'])\ntime.sleep(100)"
    )
    assert ran.ended and ran.error == "TimeoutError" and "time limit" in ran.logs
    assert not s.alive
    await s.close()


async def test_filling_the_disk(session: Session, roots: Path) -> None:
    ran = await session.run(
        "chunk = b'x' * 2**20\n"
        "for i in range(10_000):\n"
        "    with open(f'/mnt/data/fill{i % 50}-{i}', 'wb') as f:\n"
        "        f.write(chunk * 8)"
    )
    assert ran.ended and ran.error == "DiskQuotaExceeded" and "quota" in ran.logs
    used = sum(p.stat().st_size for p in (roots / "cntr_a").rglob("*") if p.is_file())
    assert used <= LIMITS.disk_bytes


async def test_a_big_file_stops_at_the_quota(session: Session) -> None:
    ran = await session.run("open('/mnt/data/big', 'wb').write(b'x' * (100 * 2**20))")
    assert ran.error is not None and "File too large" in ran.error


async def test_killing_its_parent_or_itself(roots: Path) -> None:
    s = await _session(roots, "cntr_k")
    ran = await s.run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('on')")
    assert ran.logs == "on\n"
    ran = await s.run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert ran.ended and "process ended" in ran.logs
    await s.close()
    again = await _session(roots, "cntr_k")
    assert (await again.run("print('back')")).logs == "back\n"
    await again.close()


async def test_containers_do_not_see_each_other(roots: Path) -> None:
    a = await _session(roots, "cntr_one")
    b = await _session(roots, "cntr_two")
    try:
        assert (await a.run("open('/mnt/data/secret.txt', 'w').write('a-only')")).error is None
        ran = await b.run(
            "import os\n"
            "print(os.listdir('/mnt/data'))\n"
            f"print(os.path.exists('{roots}/cntr_one/data/secret.txt'))\n"
            "print(len([p for p in os.listdir('/proc') if p.isdigit()]))"
        )
        assert ran.logs.split("\n")[:2] == ["[]", "False"]
        assert int(ran.logs.split("\n")[2]) <= 3  # its init, its kernel, at most one more
    finally:
        await asyncio.gather(a.close(), b.close())


def test_seccomp_program_is_well_formed() -> None:
    prog = seccomp.program("x86_64")
    assert len(prog) % 8 == 0 and len(prog) // 8 < 4096
    assert seccomp.program("aarch64") != prog
