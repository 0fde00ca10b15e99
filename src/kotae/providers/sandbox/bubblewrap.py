"""The sandbox on bubblewrap: each container's Python runs in new user, pid, net, ipc, uts and
cgroup namespaces with no network, on a fresh root where only the system directories (read-only)
and the container's own files exist, with every capability dropped, a seccomp filter, and
rlimits on memory, CPU, processes, file size and open files. A call past its wall-clock limit,
or past the disk quota, kills the container's whole process tree."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
import zlib
from pathlib import Path

from kotae.providers.sandbox import seccomp
from kotae.providers.sandbox.base import Execution, Limits, Sandbox, SandboxError, Session

log = logging.getLogger(__name__)

KERNEL = (Path(__file__).parent / "kernel.py").read_text()
INSTALL_HINT = (
    "The code_interpreter tool needs bubblewrap, the sandbox its code runs in: install it "
    "(`apt install bubblewrap` on Debian and Ubuntu, `dnf install bubblewrap` on Fedora) "
    "and restart kotae."
)
# When the server runs as root, each container runs as its own unprivileged user id in this
# range: its processes are counted (RLIMIT_NPROC) apart from the server's and the others'.
FIRST_UID = 200_000
UIDS = 100_000
QUOTA_POLL_SECONDS = 0.2
START_SECONDS = 20.0
REPLY_BYTES = 64 << 20  # a reply's JSON line (figures are in it)
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64")
SYSTEM_FILES = ("etc/fonts", "etc/localtime", "etc/mime.types")


class BubblewrapSandbox(Sandbox):
    name = "bubblewrap"

    def __init__(self, python: str, site: Path | None) -> None:
        self.python = python  # the interpreter inside the sandbox
        self.site = site  # its extra packages (numpy, pandas, matplotlib), read-only

    def missing(self) -> str | None:
        if shutil.which("bwrap") is None:
            return INSTALL_HINT
        for tool in ("prlimit", "setpriv"):
            if shutil.which(tool) is None:
                return f"The code_interpreter sandbox needs `{tool}` (util-linux): install it."
        if not seccomp.supported():
            return "The code_interpreter sandbox has no seccomp filter for this architecture."
        if not Path(self.python).is_file():
            return f"The code_interpreter sandbox's Python ({self.python}) does not exist."
        return None

    def command(self, root: Path, limits: Limits, seccomp_fd: int, uid: int) -> list[str]:
        bwrap = shutil.which("bwrap") or "bwrap"
        prlimit = shutil.which("prlimit") or "prlimit"
        tasks = limits.processes if os.geteuid() == 0 else _tasks_of(uid) + limits.processes
        cmd: list[str] = []
        if os.geteuid() == 0:
            # As root, the sandbox runs as the container's own user id (bwrap then makes its
            # namespaces unprivileged; uvloop's subprocesses cannot switch users themselves).
            setpriv = shutil.which("setpriv") or "setpriv"
            cmd += [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
        cmd += [
            prlimit,
            f"--as={limits.memory_bytes}",
            f"--nproc={tasks}",
            f"--fsize={limits.disk_bytes}",
            f"--nofile={limits.open_files}",
            # The hard CPU limit is the container's lifetime budget; each call lowers the soft
            # one to its own.
            f"--cpu={(cpu := max(limits.cpu_seconds * 100, 3600))}:{cpu}",
            "--core=0",
            "--",
            bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
            "--clearenv",
        ]
        for name in SYSTEM_DIRS:
            host = Path("/") / name
            if host.is_symlink():
                cmd += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                cmd += ["--ro-bind", str(host), f"/{name}"]
        for name in SYSTEM_FILES:
            cmd += ["--ro-bind-try", f"/{name}", f"/{name}"]
        prefix = Path(sys.base_prefix)
        if not self.python.startswith("/usr/") and Path(self.python).is_relative_to(prefix):
            cmd += ["--ro-bind", str(prefix), str(prefix)]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": "/tmp",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        if self.site is not None:
            cmd += ["--ro-bind", str(self.site), "/opt/kotae/site"]
            env["PYTHONPATH"] = "/opt/kotae/site"
        for key, value in env.items():
            cmd += ["--setenv", key, value]
        cmd += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--bind",
            str(root / "tmp"),
            "/tmp",
            "--bind",
            str(root / "data"),
            "/mnt/data",
            # Nothing but /mnt/data and /tmp (both on disk, under the quota) is writable.
            "--remount-ro",
            "/dev",
            "--remount-ro",
            "/",
            "--chdir",
            "/mnt/data",
            "--seccomp",
            str(seccomp_fd),
            self.python,
            "-I" if self.site is None else "-s",
            "-c",
            KERNEL,
        ]
        return cmd

    def adopt(self, root: Path, key: str) -> None:
        if os.geteuid() == 0:
            _chown_tree(root, _uid(key))

    async def start(self, root: Path, key: str, limits: Limits) -> Session:
        why = self.missing()
        if why is not None:
            raise SandboxError(why)
        for part in ("data", "tmp"):
            (root / part).mkdir(parents=True, exist_ok=True)
        uid = os.geteuid()
        if uid == 0:
            uid = _uid(key)
            _chown_tree(root, uid)
        root.chmod(0o700)
        fd = seccomp.program_fd()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command(root, limits, fd, uid),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                pass_fds=(fd,),
                start_new_session=True,
                limit=REPLY_BYTES,
            )
        except OSError as exc:
            raise SandboxError(f"The sandbox did not start: {exc}") from exc
        finally:
            os.close(fd)
        session = BubblewrapSession(process, root, limits)
        await session.ready()
        return session


class BubblewrapSession(Session):
    def __init__(self, process: asyncio.subprocess.Process, root: Path, limits: Limits) -> None:
        self.process = process
        self.root = root
        self.limits = limits
        self.stderr = b""
        self._drain = asyncio.create_task(self._read_stderr())

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def ready(self) -> None:
        """Waits for the kernel's first line; a sandbox that did not come up is an error
        that says why (bubblewrap's own message is logged: it names host paths)."""
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_SECONDS)
        except TimeoutError:
            line = b""
        if line.strip() != b'{"ready": true}':
            await self.close()
            await asyncio.sleep(0)
            log.warning("the sandbox did not start: %s", self.stderr.decode("utf-8", "replace"))
            raise SandboxError(
                "The code interpreter's sandbox did not start on this server (its log says why)."
            )

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(4096):
            self.stderr = (self.stderr + chunk)[-4096:]

    async def run(self, code: str) -> Execution:
        if not self.alive:
            raise SandboxError("The container's process has ended.")
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"code": code, "cpu_seconds": self.limits.cpu_seconds}
        started = time.time()
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return await self._ended(started, "")
        reply = asyncio.ensure_future(self.process.stdout.readline())
        quota = asyncio.ensure_future(self._watch_disk(started))
        try:
            done, _ = await asyncio.wait(
                {reply, quota},
                timeout=self.limits.wall_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            quota.cancel()
        if reply in done and not reply.exception():
            line = reply.result()
            if line:
                try:
                    answer = json.loads(line)
                    return Execution(
                        logs=str(answer["logs"]),
                        error=answer["error"],
                        images=[base64.b64decode(i) for i in answer.get("images") or []],
                    )
                except (ValueError, KeyError, TypeError):
                    await self.close()
                    return Execution(
                        "The container's process answered out of turn and was stopped.",
                        error="SandboxError",
                        ended=True,
                    )
            return await self._ended(started, "")
        reply.cancel()
        if quota in done:
            await self.close()
            _trim(self.root, started)
            return Execution(
                f"The call stopped: the container's files passed the disk quota of "
                f"{self.limits.disk_bytes >> 20} MiB. Its newest files were removed.",
                error="DiskQuotaExceeded",
                ended=True,
            )
        await self.close()
        return Execution(
            f"The call stopped: it ran past its time limit of {self.limits.wall_seconds:g} s.",
            error="TimeoutError",
            ended=True,
        )

    async def _ended(self, started: float, logs: str) -> Execution:
        await self.close()
        code = self.process.returncode
        why = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        detail = self.stderr.decode("utf-8", "replace").strip()[-500:]
        log.info("a sandbox process ended (%s): %s", why, detail)
        return Execution(
            f"{logs}The container's process ended during the call ({why}); its variables "
            "are gone, its files are kept.",
            error="ProcessEnded",
            ended=True,
        )

    async def _watch_disk(self, started: float) -> None:
        """Returns when the container's files pass the quota."""
        while True:
            await asyncio.sleep(QUOTA_POLL_SECONDS)
            used = await asyncio.to_thread(_disk_use, self.root)
            if used > self.limits.disk_bytes:
                return

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        self._drain.cancel()


def _uid(key: str) -> int:
    return FIRST_UID + zlib.crc32(key.encode()) % UIDS


def _disk_use(root: Path) -> int:
    total = 0
    for base, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
    return total


def _trim(root: Path, since: float) -> None:
    """After a quota breach: /tmp emptied and the files the call wrote removed."""
    shutil.rmtree(root / "tmp", ignore_errors=True)
    (root / "tmp").mkdir(exist_ok=True)
    for base, _, names in os.walk(root / "data"):
        for name in names:
            path = os.path.join(base, name)
            with contextlib.suppress(OSError):
                if os.lstat(path).st_mtime >= since - 1:
                    os.unlink(path)


def _chown_tree(root: Path, uid: int) -> None:
    for base, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            os.lchown(os.path.join(base, name), uid, uid)
    os.lchown(root, uid, uid)


def _tasks_of(uid: int) -> int:
    """Processes and threads this user runs now: RLIMIT_NPROC counts them all."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
    return count
