"""Test helpers: a real `kotae serve` subprocess, and the stream-grammar check."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests import postgres, s3

# KOTAE_TEST_STACK=scale-out: every `kotae serve` the tests start runs on PostgreSQL +
# pgvector and S3, as an API replica (--no-worker) beside its own `kotae worker`.
SCALE_OUT = os.environ.get("KOTAE_TEST_STACK") == "scale-out"
WORKERS: list[subprocess.Popen[bytes]] = []
atexit.register(lambda: [w.kill() for w in WORKERS])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The ops routes' token: /metrics needs it, and /ready shows its detail to it.
OPS_TOKEN = "ops-token-for-the-tests"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


TEST_DEFAULT_MODEL = "smollm2-135m-instruct"


def kotae_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOTAE_", "OPENAI_"))}
    env.update(
        {
            "KOTAE_DATA_DIR": str(data_dir),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "KOTAE_KEY_CACHE_SECONDS": "0",
            "KOTAE_METRICS_TOKEN": OPS_TOKEN,
            "KOTAE_DEFAULT_MODEL": TEST_DEFAULT_MODEL,
        }
    )
    if SCALE_OUT:
        # The same suites on PostgreSQL + pgvector and S3: a database and a bucket for each
        # data dir, so a server restarted on its data dir finds its state.
        env["KOTAE_DATABASE_URL"] = postgres.database_url(str(data_dir))
        env["KOTAE_BLOB_URL"] = f"s3://{s3.new_bucket(str(data_dir))}/kotae"
        env["KOTAE_S3_ENDPOINT_URL"] = s3.endpoint()
        env["KOTAE_S3_ACCESS_KEY_ID"] = s3.KEYS["access_key_id"]
        env["KOTAE_S3_SECRET_ACCESS_KEY"] = s3.KEYS["secret_access_key"]
    env.update(extra)
    return env


def kotae_process(
    env: dict[str, str], *args: str, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`kotae ARGS` run to its end, as a user runs it; its exit status is the caller's."""
    return subprocess.run(
        [sys.executable, "-m", "kotae", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(env: dict[str, str], *args: str) -> str:
    out = kotae_process(env, *args)
    out.check_returncode()
    return out.stdout


def new_key(env: dict[str, str], project: str) -> str:
    return run_cli(env, "keys", "create", "--project", project).strip().splitlines()[-1]


class Server:
    """`kotae serve` on a free port, as a user starts it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        log_level: str = "warning",
        args: Sequence[str] = (),
        worker: bool = True,
        log_name: str = "serve.log",
        **env: str,
    ) -> None:
        """`worker=False`: the scale-out stack's own worker is not started (the test starts
        workers itself)."""
        self.port = free_port()
        self.data_dir = data_dir
        self.env = kotae_env(data_dir, **env)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = data_dir / log_name
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kotae",
                "serve",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                log_level,
                *(["--no-worker"] if SCALE_OUT else []),
                *args,
            ],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_for(self.port, self.proc, self.log_path)
        self.worker: subprocess.Popen[bytes] | None = None
        if SCALE_OUT and worker:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "kotae", "worker", "--log-level", log_level],
                env=self.env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            WORKERS.append(self.worker)

    @staticmethod
    def wait_for(
        port: int, proc: subprocess.Popen[bytes], log_path: Path, seconds: float = 60
    ) -> None:
        """Until a `kotae serve` started on `port` answers /health (or has exited)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"kotae serve exited: {log_path.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("kotae serve did not start in time")

    @staticmethod
    def env_for(data_dir: Path, **env: str) -> dict[str, str]:
        """The environment a server on `data_dir` runs with (for CLI commands beside it)."""
        return kotae_env(data_dir, **env)

    @property
    def background(self) -> subprocess.Popen[bytes]:
        """The process doing the background work: the worker beside it, or the server."""
        return self.worker or self.proc

    def kill(self) -> None:
        """kill -9, the server and the worker beside it (whichever runs the work)."""
        for proc in (self.proc, self.worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        self._log.close()

    def first_start_output(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def children(pid: int, marker: str) -> list[int]:
    """Live child processes of `pid` whose command line contains `marker` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def assert_stream_grammar(events: Iterable[Any]) -> list[Any]:
    """Every added has its done, indices agree, sequence numbers climb by one, one terminal."""
    events = list(events)
    assert events, "no events"
    types = [e.type for e in events]
    assert types[0] == "response.created", types[:3]
    seqs = [e.sequence_number for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    terminal = {"response.completed", "response.incomplete", "response.failed"}
    assert types[-1] in terminal, types[-1]
    assert sum(t in terminal for t in types) == 1
    open_items: dict[int, str] = {}
    open_parts: set[tuple[str, int]] = set()
    texts: dict[tuple[str, int], str] = {}
    thoughts: dict[tuple[str, int], str] = {}  # reasoning_text parts
    summaries: dict[tuple[str, int], str] = {}
    for e in events:
        if e.type == "response.output_item.added":
            assert e.output_index not in open_items
            open_items[e.output_index] = e.item.id
        elif e.type == "response.output_item.done":
            assert open_items.pop(e.output_index) == e.item.id
            assert not any(p[0] == e.item.id for p in open_parts), "item closed before its parts"
        elif e.type == "response.content_part.added":
            assert open_items.get(e.output_index) == e.item_id
            open_parts.add((e.item_id, e.content_index))
            kind = thoughts if e.part.type == "reasoning_text" else texts
            kind[(e.item_id, e.content_index)] = ""
        elif e.type == "response.content_part.done":
            open_parts.remove((e.item_id, e.content_index))
            kind = thoughts if e.part.type == "reasoning_text" else texts
            assert e.part.text == kind[(e.item_id, e.content_index)]
        elif e.type == "response.reasoning_text.delta":
            assert (e.item_id, e.content_index) in open_parts
            assert open_items[e.output_index] == e.item_id
            thoughts[(e.item_id, e.content_index)] += e.delta
        elif e.type == "response.reasoning_text.done":
            assert e.text == thoughts[(e.item_id, e.content_index)]
        elif e.type == "response.reasoning_summary_part.added":
            assert open_items[e.output_index] == e.item_id
            assert (e.item_id, e.summary_index) not in summaries
            summaries[(e.item_id, e.summary_index)] = ""
            open_parts.add((e.item_id, -100 - e.summary_index))
        elif e.type == "response.reasoning_summary_text.delta":
            assert (e.item_id, -100 - e.summary_index) in open_parts
            summaries[(e.item_id, e.summary_index)] += e.delta
        elif e.type == "response.reasoning_summary_text.done":
            assert e.text == summaries[(e.item_id, e.summary_index)]
        elif e.type == "response.reasoning_summary_part.done":
            open_parts.remove((e.item_id, -100 - e.summary_index))
            assert e.part.text == summaries[(e.item_id, e.summary_index)]
        elif e.type == "response.output_text.delta":
            assert (e.item_id, e.content_index) in open_parts
            assert open_items[e.output_index] == e.item_id
            texts[(e.item_id, e.content_index)] += e.delta
        elif e.type == "response.function_call_arguments.delta":
            assert open_items[e.output_index] == e.item_id
            texts[(e.item_id, -1)] = texts.get((e.item_id, -1), "") + e.delta
        elif e.type == "response.function_call_arguments.done":
            assert open_items[e.output_index] == e.item_id
            assert e.arguments == texts.pop((e.item_id, -1), "")
        elif e.type.startswith(("response.image_generation_call.", "response.web_search_call.")):
            assert open_items[e.output_index] == e.item_id
        elif e.type == "response.output_text.done":
            assert (e.item_id, e.content_index) in open_parts
            assert e.text == texts[(e.item_id, e.content_index)]
    assert not open_items and not open_parts, "unclosed items or parts"
    final = events[-1].response
    streamed = "".join(texts.values())
    assert final.output_text == streamed
    return events


def state_engine(env: dict[str, str]) -> Any:
    """An engine on the database a server with `env` uses (SQLite or PostgreSQL)."""
    import sqlalchemy

    url = env.get("KOTAE_DATABASE_URL") or f"sqlite:///{env['KOTAE_DATA_DIR']}/kotae.db"
    return sqlalchemy.create_engine(url)


def stored_blobs(env: dict[str, str], area: str = "files") -> list[str]:
    """The keys in one area of the blob store a server with `env` uses (its disk, or its
    bucket)."""
    from kotae.config import Settings
    from kotae.providers.blobs.base import blob_store

    settings = Settings(
        data_dir=Path(env["KOTAE_DATA_DIR"]),
        blob_url=env.get("KOTAE_BLOB_URL"),
        s3_endpoint_url=env.get("KOTAE_S3_ENDPOINT_URL"),
        s3_access_key_id=env.get("KOTAE_S3_ACCESS_KEY_ID"),
        s3_secret_access_key=env.get("KOTAE_S3_SECRET_ACCESS_KEY"),
    )
    return [key for key, _ in blob_store(settings, area).listing()]
