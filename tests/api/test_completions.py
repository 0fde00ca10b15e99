"""The legacy POST /v1/completions through the openai SDK: a prompt continued as text, on the
embedded engines."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL, REAL_MODEL


def test_a_prompt_is_continued_as_text(client: OpenAI) -> None:
    done = client.completions.create(
        model=REAL_MODEL, prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert done.object == "text_completion" and done.id.startswith("cmpl")
    assert len(done.choices) == 1 and done.choices[0].text.strip()
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage is not None and done.usage.prompt_tokens >= 5
    assert 1 <= done.usage.completion_tokens <= 8
    echoed = client.completions.create(
        model=REAL_MODEL, prompt="The capital of France is", max_tokens=8, temperature=0, echo=True
    )
    assert echoed.choices[0].text == "The capital of France is" + done.choices[0].text


def test_prompts_n_stream_and_logprobs(client: OpenAI) -> None:
    ask = {"model": FAST_MODEL, "max_tokens": 6, "temperature": 1.0, "seed": 3}
    many = client.completions.create(prompt=["one", "two"], n=2, **ask)  # type: ignore[arg-type]
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    assert many.choices[0].text != many.choices[1].text  # seed + i: two samples
    single = client.completions.create(prompt="one", **ask)  # type: ignore[arg-type]
    assert single.choices[0].text == many.choices[0].text
    # Each prompt's tokens are counted once for its n choices, and a repeated prompt twice.
    twice = client.completions.create(prompt=["one", "one"], **ask)  # type: ignore[arg-type]
    assert single.usage is not None and twice.usage is not None
    assert twice.usage.prompt_tokens == 2 * single.usage.prompt_tokens
    chunks = list(
        client.completions.create(
            prompt="one",
            stream=True,
            stream_options={"include_usage": True},
            logprobs=2,
            **ask,  # type: ignore[arg-type]
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == single.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1
    scored = [c.choices[0].logprobs for c in chunks if c.choices and c.choices[0].logprobs]
    assert scored and all(
        len(s.tokens or []) == len(s.token_logprobs or []) == len(s.text_offset or [])
        for s in scored
    )
    assert all(len(top) <= 2 for s in scored for top in s.top_logprobs or [])


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": "x", "suffix": "y"}, "suffix"),
        ({"prompt": []}, "prompt"),
        ({"prompt": "x", "logprobs": 6}, "logprobs"),
    ],
)
def test_what_cannot_be_done_is_a_400(client: OpenAI, extra: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=FAST_MODEL, **extra)  # type: ignore[call-overload]
    assert err.value.body["param"] == param  # type: ignore[index]
