"""Reusable prompts: versions made through kotae's /v1/prompts, used by the SDK's
`responses.create(prompt=...)`, rendered with their variables and echoed."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image

from tests.conftest import FAST_MODEL
from tests.helpers import Server


def call(c: OpenAI, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    got = httpx.request(
        method,
        f"{c.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {c.api_key}"},
        timeout=60,
    )
    return got


def test_versions_render_with_variables_and_are_echoed(client: OpenAI, server: Server) -> None:
    made = call(client, "POST", "prompts", {
        "name": "support",
        "instructions": "You answer for {{company}}. Be brief.",
        "input": [{"role": "user", "content": "Customer {{customer}} asks: {{question}}"}],
        "model": FAST_MODEL,
        "variables": {"company": "Acme"},
    }).json()  # fmt: skip
    assert made["id"].startswith("pmpt_") and made["version"] == "1"
    second = call(client, "POST", f"prompts/{made['id']}/versions", {
        "instructions": "You answer for {{company}} in one sentence.",
        "input": [{"role": "user", "content": "{{customer}}: {{question}}"}],
        "model": FAST_MODEL,
    }).json()  # fmt: skip
    assert second["version"] == "2"
    r = client.responses.create(
        prompt={
            "id": made["id"],
            "version": "1",
            "variables": {"customer": "Ken", "question": "Where is my parcel?"},
        },
        max_output_tokens=16,
    )
    assert r.model == FAST_MODEL  # from the prompt
    assert r.prompt is not None and r.prompt.id == made["id"] and r.prompt.version == "1"
    assert r.prompt.variables == {"customer": "Ken", "question": "Where is my parcel?"}
    assert r.instructions == "You answer for Acme. Be brief."
    items = client.responses.input_items.list(r.id, order="asc").data
    assert items[0].content[0].text == "Customer Ken asks: Where is my parcel?"
    latest = client.responses.create(
        prompt={
            "id": made["id"],
            "variables": {"company": "Zen", "customer": "A", "question": "B"},
        },
        input="And one more thing.",
        max_output_tokens=16,
    )
    assert latest.instructions == "You answer for Zen in one sentence."  # version 2
    texts = [
        i.content[0].text for i in client.responses.input_items.list(latest.id, order="asc").data
    ]
    assert texts == ["A: B", "And one more thing."]
    listed = call(client, "GET", "prompts").json()["data"]
    assert [(p["id"], p["version"]) for p in listed if p["id"] == made["id"]] == [(made["id"], "2")]
    versions = call(client, "GET", f"prompts/{made['id']}/versions").json()["data"]
    assert [v["version"] for v in versions] == ["2", "1"]
    assert call(client, "GET", f"prompts/{made['id']}?version=1").json()["version"] == "1"


def test_missing_variables_unknown_ids_and_versions_are_400s(client: OpenAI) -> None:
    made = call(client, "POST", "prompts", {
        "instructions": "Talk about {{topic}}.", "model": FAST_MODEL
    }).json()  # fmt: skip
    cases = [
        ({"id": made["id"]}, "prompt.variables.topic"),
        ({"id": made["id"], "version": "9", "variables": {"topic": "x"}}, "prompt.version"),
        ({"id": "pmpt_nope", "variables": {"topic": "x"}}, "prompt.id"),
    ]
    for prompt, param in cases:
        with pytest.raises(openai.BadRequestError) as bad:
            client.responses.create(prompt=prompt, input="hi")  # type: ignore[arg-type]
        assert bad.value.param == param, prompt
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(input="hi")  # neither a model nor a prompt with one
    assert bad.value.param == "model"


def test_an_image_variable_becomes_a_part_of_the_message(client: OpenAI) -> None:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (250, 10, 10)).save(out, "PNG")
    url = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    made = call(client, "POST", "prompts", {
        "input": [{"role": "user", "content": "What colour is this? {{photo}} Answer in a word."}],
        "model": FAST_MODEL,
    }).json()  # fmt: skip
    r = client.responses.create(
        prompt={
            "id": made["id"],
            "variables": {"photo": {"type": "input_image", "image_url": url}},
        },
        max_output_tokens=16,
    )
    parts = client.responses.input_items.list(r.id).data[0].content
    assert [p.type for p in parts] == ["input_text", "input_image", "input_text"]
    assert parts[0].text == "What colour is this? " and parts[2].text == " Answer in a word."


def test_prompts_belong_to_their_project(client: OpenAI, client_b: OpenAI) -> None:
    made = call(client, "POST", "prompts", {"instructions": "Hi.", "model": FAST_MODEL}).json()
    assert call(client_b, "GET", f"prompts/{made['id']}").status_code == 404
    assert made["id"] not in [p["id"] for p in call(client_b, "GET", "prompts").json()["data"]]
    with pytest.raises(openai.BadRequestError):
        client_b.responses.create(prompt={"id": made["id"]}, input="x")
    assert call(client_b, "DELETE", f"prompts/{made['id']}").status_code == 404
    assert call(client, "DELETE", f"prompts/{made['id']}").json()["deleted"] is True
    assert call(client, "GET", f"prompts/{made['id']}").status_code == 404
