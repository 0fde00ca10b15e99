"""The code_interpreter tool: the model writes Python, a container's sandboxed process runs it
(state kept between calls), and what it printed, plotted and saved comes back: as the call's
`outputs` (with include=["code_interpreter_call.outputs"]), as container files cited in the
answer, and as the text the model reads next."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any

from kotae.errors import InvalidRequest, NotFound
from kotae.providers.inference.base import FunctionSpec, ToolCall
from kotae.services.containers.service import NOT_CONFIGURED, Ran
from kotae.services.responses.builtin.base import BuiltinTool, Outcome, ToolDeps, ToolRun
from kotae.services.responses.builtin.file_search import argument
from kotae.services.responses.events import StreamEvent

RUN_PYTHON = FunctionSpec(
    "python",
    "Run Python code in a stateful sandbox, like a Jupyter notebook: variables persist between "
    "calls and the value of a last bare expression is shown. numpy, pandas and matplotlib are "
    "installed; there is no internet. The user's files are in /mnt/data; save files there to "
    "give them to the user. Print what you need to see.",
    {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
)
MODEL_LOG_CHARS = 4000  # of a call's output, what the model reads
OPTIONS = {"type", "container", "allowed_callers"}
AUTO_OPTIONS = {"type", "file_ids", "memory_limit", "network_policy"}


class CodeInterpreter(BuiltinTool):
    kind = "code_interpreter"

    def __init__(self, raw: dict[str, Any], index: int) -> None:
        super().__init__(raw, index)
        for key in raw:
            if key not in OPTIONS:
                raise InvalidRequest(
                    f"code_interpreter option '{key}' is not supported.",
                    param=f"tools[{index}].{key}",
                )
        callers = raw.get("allowed_callers")
        if callers is not None and (not isinstance(callers, list) or "direct" not in callers):
            # Only the model calls it here (no calls from inside other tools' code).
            raise InvalidRequest(
                "allowed_callers must include 'direct'.", param=f"tools[{index}].allowed_callers"
            )
        container = raw.get("container")
        where = f"tools[{index}].container"
        if isinstance(container, str):
            if not container.startswith("cntr_"):
                raise InvalidRequest(
                    "container must be a container id (cntr_...) or {'type': 'auto'}.",
                    param=where,
                )
        elif isinstance(container, dict):
            if container.get("type") != "auto":
                raise InvalidRequest("container.type must be 'auto'.", param=f"{where}.type")
            for key in container:
                if key not in AUTO_OPTIONS:
                    raise InvalidRequest(
                        f"container option '{key}' is not supported.", param=f"{where}.{key}"
                    )
            ids = container.get("file_ids") or []
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise InvalidRequest(
                    "file_ids must be a list of file ids.", param=f"{where}.file_ids"
                )
            policy = container.get("network_policy")
            if policy is not None and (
                not isinstance(policy, dict) or policy.get("type") != "disabled"
            ):
                raise InvalidRequest(
                    "This server's containers have no network: network_policy must be "
                    "{'type': 'disabled'}.",
                    param=f"{where}.network_policy",
                )
        else:
            raise InvalidRequest(
                "code_interpreter needs a container: an id (cntr_...) or {'type': 'auto'}.",
                param=where,
            )
        self.container_id: str | None = container if isinstance(container, str) else None

    def functions(self) -> list[FunctionSpec]:
        return [RUN_PYTHON]

    def unavailable(self, deps: ToolDeps) -> tuple[str, str | None] | None:
        why = deps.containers.unavailable() if deps.containers is not None else "turned off"
        return (why, NOT_CONFIGURED) if why is not None else None

    async def check(
        self, project_id: str, param: str, deps: ToolDeps, history: list[dict[str, Any]]
    ) -> None:
        assert deps.containers is not None
        if self.container_id is not None:
            await deps.containers.active(project_id, self.container_id, f"{param}.container")
            return
        for i, file_id in enumerate(self.raw["container"].get("file_ids") or []):
            if not deps.containers.has_file(project_id, file_id):
                raise NotFound(
                    f"No such File object: {file_id}", param=f"{param}.container.file_ids[{i}]"
                )
        # A thread goes on in the container its earlier turns used, while it lives.
        for item in reversed(history):
            earlier = item.get("container_id")
            if item.get("type") == "code_interpreter_call" and isinstance(earlier, str):
                row = await deps.containers.find(project_id, earlier)
                if row is not None and row["status"] == "running":
                    self.container_id = earlier
                break

    async def _container(self, run: ToolRun) -> str:
        """The container this response runs code in: made on first use for `auto`."""
        if self.container_id is None:
            assert run.deps.containers is not None
            auto = self.raw["container"]
            made = await run.deps.containers.create(
                run.project_id,
                "Container for a response",
                file_ids=auto.get("file_ids"),
                memory_limit=auto.get("memory_limit"),
                param=f"tools[{self.index}].container.",
            )
            self.container_id = str(made["id"])
        return self.container_id

    async def run(self, call: ToolCall, run: ToolRun) -> AsyncIterator[StreamEvent | Outcome]:
        containers = run.deps.containers
        assert containers is not None
        code = argument(call, "code") or _bare_code(call.arguments)
        container_id = await self._container(run)
        for event in run.emitter.start_code_interpreter(container_id, code):
            yield event
        if not code.strip():
            for event in run.emitter.finish_code_interpreter(None, "failed"):
                yield event
            yield Outcome("No code was given: call python with the code to run.")
            return
        ran = await containers.run(run.project_id, container_id, code)
        shown = _outputs(ran) if "code_interpreter_call.outputs" in run.include else None
        status = "failed" if ran.execution.ended else "completed"
        for event in run.emitter.finish_code_interpreter(shown, status):
            yield event
        yield Outcome(_for_model(ran), cite=_citations(container_id, ran))


def _bare_code(arguments: str) -> str:
    """Code a model wrote as the whole argument string rather than as {"code": ...}."""
    text = arguments.strip()
    return "" if text.startswith("{") else text


def _outputs(ran: Ran) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = [{"type": "logs", "logs": ran.execution.logs}]
    for image in ran.execution.images or []:
        data = base64.b64encode(image).decode()
        outputs.append({"type": "image", "url": f"data:image/png;base64,{data}"})
    return outputs


def _for_model(ran: Ran) -> str:
    logs = ran.execution.logs
    if len(logs) > MODEL_LOG_CHARS:
        logs = "..." + logs[-MODEL_LOG_CHARS:]
    parts = [
        f"The code ran. Its output:\n{logs}" if logs.strip() else "The code ran, printing nothing."
    ]
    if ran.execution.error:
        parts[0] = f"The code failed. Its output:\n{logs}"
    if ran.execution.images:
        parts.append(f"It drew {len(ran.execution.images)} figure(s), shown to the user.")
    if ran.files:
        parts.append("Files it saved: " + ", ".join(f["path"] for f in ran.files) + ".")
    return "\n".join(parts)


def _citations(container_id: str, ran: Ran) -> Any:
    """The answer's container_file_citation annotations: where the answer names a file the
    code saved, or at its end."""
    if not ran.files:
        return None

    def cite(text: str) -> list[dict[str, Any]]:
        found = []
        for f in ran.files:
            name = PurePosixPath(f["path"]).name
            start = text.find(f["path"])
            length = len(f["path"])
            if start < 0:
                start, length = text.find(name), len(name)
            if start < 0:
                start, length = len(text), 0
            found.append(
                {
                    "type": "container_file_citation",
                    "container_id": container_id,
                    "file_id": f["id"],
                    "filename": name,
                    "start_index": start,
                    "end_index": start + length,
                }
            )
        return found

    return cite
