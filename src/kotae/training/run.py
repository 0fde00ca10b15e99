"""The training process: `python -m kotae.training.run SPEC.json`. It prints one JSON object
a line on stdout (progress, checkpoints, the end) for the server to record."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from kotae.runners.lifeline import die_with_parent


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    # Killed with the server, even by -9: a trainer left behind would hold the cores and
    # write to a job that the restarted server has already failed.
    die_with_parent(int(spec["parent_pid"]) if spec.get("parent_pid") else None)

    def emit(event: dict[str, Any]) -> None:
        print(json.dumps(event), flush=True)

    try:
        from kotae.training.lora import TrainingError, train

        try:
            train(spec, emit)
        except TrainingError as exc:
            emit({"event": "error", "code": exc.code, "message": str(exc)})
            return 1
    except Exception as exc:  # reported to the job, with the trace in the server's log
        traceback.print_exc()
        emit(
            {"event": "error", "code": "training_failed", "message": f"{type(exc).__name__}: {exc}"}
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
