"""The default a user gets from `bash install.sh && kotae serve` (Qwen2.5-Coder-1.5B-Instruct,
assembled from its hash-pinned part wheels), answering through the SDKs: Japanese in
Japanese, and the Agents SDK's function tool called under tool_choice "auto"."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI, OpenAI

from kotae.config import Settings
from kotae.services import packaged_models
from tests.helpers import OPS, Server, new_key

DEFAULT = packaged_models.PACKAGED_MODELS[0]

pytestmark = pytest.mark.skipif(
    packaged_models.total_memory_gib() < DEFAULT.min_memory_gib,
    reason=f"{DEFAULT.id} is the default from {DEFAULT.min_memory_gib} GiB of memory",
)


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    assembled = Settings().packaged_models_dir / DEFAULT.filename
    assert assembled.is_file(), f"{assembled} is missing: bash install.sh assembles it"
    srv = Server(tmp_path_factory.mktemp("default"), KOTAE_DEFAULT_MODEL="")  # unset: chosen
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def key(default_server: Server) -> str:
    return new_key(default_server.env, "default-model")


def test_the_default_is_the_assembled_model(default_server: Server, key: str) -> None:
    client = OpenAI(base_url=default_server.base_url, api_key=key, max_retries=0, timeout=300)
    listed = {m.id for m in client.models.list()}
    assert DEFAULT.id in listed
    r = client.responses.create(model="gpt-4o", input="日本の首都はどこですか？")
    assert r.model == DEFAULT.id  # the alias answers with the model it names, as OpenAI
    assert "東京" in r.output_text, r.output_text
    assert "Tokyo" not in r.output_text  # answered in Japanese


def test_agents_sdk_calls_its_function_on_auto(default_server: Server, key: str) -> None:
    set_tracing_disabled(True)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get today's weather for a city."""
        calls.append(city)
        return f"{city}: 晴れ、最高気温18度"

    client = AsyncOpenAI(base_url=default_server.base_url, api_key=key, max_retries=0)
    agent = Agent(
        name="天気",
        instructions="あなたは天気アシスタントです。",
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
        tools=[get_weather],  # tool_choice left to the model ("auto")
        # Greedy, so the test is the same every run: at the default temperature (0.3) about
        # one run in eight thanks the user for the weather instead of telling it.
        model_settings=ModelSettings(temperature=0),
    )
    result = asyncio.run(Runner.run(agent, "東京の今日の天気は？", max_turns=4))
    assert calls and any("東京" in c or "Tokyo" in c for c in calls)
    answer = str(result.final_output)
    assert "晴" in answer or "18" in answer, answer
    assert "<tool_response>" not in answer and "tool_call" not in answer


def test_pydantic_ai_websocket_transport_runs_a_tool_round_trip(
    default_server: Server, key: str
) -> None:
    """tool_choice left "auto" (pydantic-ai refuses "required": it would leave the agent no
    way to answer), which the default model can do."""
    from pydantic_ai import Agent as PydanticAgent
    from pydantic_ai.models.openai import OpenAIResponsesModel, OpenAIResponsesModelSettings
    from pydantic_ai.providers.openai import OpenAIProvider

    def sockets() -> float:
        text = httpx.get(default_server.base_url.removesuffix("/v1") + "/metrics", headers=OPS).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("kotae_requests_total") and 'method="WEBSOCKET"' in line
        )

    model = OpenAIResponsesModel(
        "gpt-4o", provider=OpenAIProvider(base_url=default_server.base_url, api_key=key)
    )
    settings = OpenAIResponsesModelSettings(
        openai_transport="websocket",
        max_tokens=200,
        temperature=0,  # greedy: the same each run
    )
    agent = PydanticAgent(model, model_settings=settings)
    calls: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        calls.append(city)
        return f"The weather in {city} is sunny, 21C."

    before = sockets()

    async def run() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a fallback to HTTP warns: not here
            async with agent.run_stream("東京の今日の天気は？") as streamed:
                return await streamed.get_output()

    output = asyncio.run(run())
    assert calls and isinstance(output, str) and output
    assert sockets() >= before + 2  # the call and the answer went over the socket


def test_assembled_file_verifies() -> None:
    packaged_models.verify(DEFAULT, Settings().packaged_models_dir / DEFAULT.filename)


def test_the_default_writes_and_runs_code(default_server: Server, key: str) -> None:
    """The code interpreter on the embedded default (the constrained strategy: the model
    writes the code, the sandbox runs it, the model reads the output)."""
    from kotae.container import sandbox

    if (box := sandbox(Settings())) is None or box.missing() is not None:
        pytest.skip("no code interpreter sandbox here")
    client = OpenAI(base_url=default_server.base_url, api_key=key, max_retries=0, timeout=300)
    r = client.responses.create(
        model="gpt-4o",
        input="Use Python to compute 2 to the power of 100.",
        tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
        include=["code_interpreter_call.outputs"],
        temperature=0,
    )
    call = next(o for o in r.output if o.type == "code_interpreter_call")
    assert call.status == "completed", call
    logs = "".join(o.logs for o in call.outputs or [] if o.type == "logs")
    assert "1267650600228229401496703205376" in logs, (call.code, logs)
    assert "1267650600228229401496703205376" in r.output_text, r.output_text
