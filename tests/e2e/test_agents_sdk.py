"""The OpenAI Agents SDK runs a tool-using agent against kotae, unchanged."""

from __future__ import annotations

import asyncio

from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.helpers import Server


def test_agent_calls_its_function_and_finishes(server: Server, key_a: str) -> None:
    set_tracing_disabled(True)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        calls.append(city)
        return f"The weather in {city} is sunny, 21C."

    client = AsyncOpenAI(base_url=server.base_url, api_key=key_a, max_retries=0)
    agent = Agent(
        name="Assistant",
        instructions="You are a helpful assistant.",
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
        tools=[get_weather],
        # The 135M default model calls tools only when asked to; the SDK resets the choice
        # after the call, so the agent then answers.
        model_settings=ModelSettings(tool_choice="required", max_tokens=200),
    )
    result = asyncio.run(Runner.run(agent, "What's the weather in Tokyo?", max_turns=5))
    assert calls and all(isinstance(c, str) and c for c in calls)
    assert isinstance(result.final_output, str) and result.final_output
