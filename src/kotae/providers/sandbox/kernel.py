"""The container's Python process, run inside the sandbox by its own interpreter (standard
library only; numpy, pandas and matplotlib when installed). It reads one JSON request per line
on stdin (`{"code", "cpu_seconds"}`), runs the code in one namespace kept between calls, as a
notebook does (a last bare expression is printed), and writes one JSON line back: the call's
output (stdout and stderr, C-level writes included), the error if it raised, and the figures
it left open as PNG."""

# This file is read and passed to `python -c`: it must not import kotae.

import ast
import base64
import contextlib
import io
import json
import os
import resource
import signal
import sys
import tempfile
import traceback

MAX_LOG_BYTES = 64 * 1024
MAX_FIGURES = 8
_saved = [0]  # figures saved so far, for their file names


class CpuTimeExceeded(Exception):
    pass


def _on_xcpu(signum: int, frame: object) -> None:
    raise CpuTimeExceeded("CPU time limit of this call exceeded")


def _figures() -> list[str]:
    """Open matplotlib figures as PNG (saved to /mnt/data too), then closed."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    shown = []
    for number in plt.get_fignums()[:MAX_FIGURES]:
        buffer = io.BytesIO()
        plt.figure(number).savefig(buffer, format="png", dpi=100)
        data = buffer.getvalue()
        _saved[0] += 1
        while os.path.exists(name := f"/mnt/data/figure-{_saved[0]}.png"):
            _saved[0] += 1
        try:
            with open(name, "wb") as out:
                out.write(data)
        except OSError:
            pass
        shown.append(base64.b64encode(data).decode())
    plt.close("all")
    return shown


def _stop_the_rest() -> None:
    """Kills every process the call started (the sandbox's pid namespace holds only its
    init and this kernel otherwise): nothing runs on between calls."""
    with contextlib.suppress(OSError):
        os.kill(-1, signal.SIGKILL)
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _run(code: str, namespace: dict[str, object]) -> None:
    tree = ast.parse(code, "<code>", "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body[-1].value)
        tree.body.pop()
    exec(compile(tree, "<code>", "exec"), namespace)
    if last is not None:
        value = eval(compile(last, "<code>", "eval"), namespace)
        if value is not None:
            print(repr(value))


def main() -> None:
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    signal.signal(signal.SIGXCPU, _on_xcpu)
    namespace: dict[str, object] = {"__name__": "__main__"}
    me = os.getpid()
    os.chdir("/mnt/data")
    replies.write(b'{"ready": true}\n')
    replies.flush()
    for line in requests:
        request = json.loads(line)
        log = tempfile.TemporaryFile(dir="/tmp")  # noqa: SIM115 - closed after the reply
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = int(used.ru_utime + used.ru_stime)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = spent + int(request.get("cpu_seconds") or 30)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        error = None
        try:
            _run(request["code"], namespace)
        except BaseException as exc:  # the user's code may raise anything
            if os.getpid() != me:
                os._exit(1)  # a process the code forked: only the kernel answers
            frames = traceback.extract_tb(exc.__traceback__)
            shown = [f for f in frames if f.filename == "<code>"]
            error = "".join(
                [
                    "Traceback (most recent call last):\n",
                    *traceback.format_list(shown),
                    *traceback.format_exception_only(type(exc), exc),
                ]
            )
            print(error, end="", file=sys.stderr)
        if os.getpid() != me:
            os._exit(0)
        _stop_the_rest()
        images: list[str] = []
        try:
            images = _figures()
        except Exception as exc:
            print(f"Saving figures failed: {exc}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - MAX_LOG_BYTES))
        logs = log.read().decode("utf-8", "replace")
        if size > MAX_LOG_BYTES:
            logs = f"[{size - MAX_LOG_BYTES} bytes of output cut]\n" + logs
        log.close()
        reply = {"logs": logs, "error": error, "images": images}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()


main()
