"""Requests per second through nginx with one API replica and with two, on the same remote
upstream, in the same run.

Run:  python bench/replicas.py [--concurrency 16] [--seconds 20]

The upstream is the tests' scripted engine (OpenAI's chat protocol on loopback, answering at
once), so what is measured is kotae's own work per request: a non-streamed
`responses.create` with `store=false`. nginx (Debian's package) balances by least
connections, as `deploy/nginx.conf` does (`apt-get install nginx-light`); both replicas share
one SQLite state. On a machine
with few cores, replicas compete for the same CPUs: the table says how many there were.
Asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import Server, free_port, new_key
from tests.standins import ScriptedChatEngine

NGINX = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  upstream kotae {{ least_conn; {servers} keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://kotae;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


async def load(url: str, key: str, concurrency: int, seconds: float) -> tuple[float, float]:
    body = {"model": "scripted", "input": "Hello", "store": False}
    headers = {"Authorization": f"Bearer {key}"}
    done = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                t = time.perf_counter()
                r = await client.post(f"{url}/responses", json=body, headers=headers)
                r.raise_for_status()
                latencies.append(time.perf_counter() - t)
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return done / elapsed, latencies[len(latencies) // 2] * 1000


def nginx(work: Path, ports: list[int]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    servers = " ".join(f"server 127.0.0.1:{p};" for p in ports)
    conf.write_text(NGINX.format(work=work, servers=servers, port=port))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([binary, "-c", str(conf), "-g", "daemon off;"])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, f"{url}/v1"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    engine = ScriptedChatEngine(["Hello! How can I help?"])
    models = json.dumps([{"id": "scripted", "backend": "openai_compat", "base_url": engine.url}])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d"
        a = Server(data, KOTAE_MODELS=models)
        b = Server(data, log_name="serve-b.log", KOTAE_MODELS=models)
        key = new_key(a.env, "bench")
        try:
            for name, ports in (("1 replica", [a.port]), ("2 replicas", [a.port, b.port])):
                proc, url = nginx(Path(tmp) / name.replace(" ", "-"), ports)
                try:
                    asyncio.run(load(url, key, args.concurrency, 3))  # warm
                    rps, p50 = asyncio.run(load(url, key, args.concurrency, args.seconds))
                finally:
                    proc.terminate()
                    proc.wait()
                rows.append((name, rps, p50))
        finally:
            a.stop()
            b.stop()
            engine.close()
    cores = os.cpu_count()
    print(
        f"\nnginx → kotae → scripted upstream, concurrency {args.concurrency}, "
        f"{args.seconds:.0f} s each, {cores} cores\n"
    )
    print(f"{'':<12} {'req/s':>8} {'p50 ms':>8}")
    for name, rps, p50 in rows:
        print(f"{name:<12} {rps:8.1f} {p50:8.1f}")
    print(f"\n2 replicas / 1 replica: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
