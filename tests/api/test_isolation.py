"""Another project's ids answer exactly as missing ones."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.conftest import FAST_MODEL


@pytest.fixture(scope="module")
def owned(client: OpenAI) -> str:
    return client.responses.create(model=FAST_MODEL, input="secret", max_output_tokens=16).id


def _error(call: object) -> tuple[type[Exception], dict[str, object]]:
    try:
        call()  # type: ignore[operator]
    except openai.APIStatusError as exc:
        return type(exc), exc.body  # type: ignore[return-value]
    raise AssertionError("no error")


def test_retrieve_matches_missing(client_b: OpenAI, owned: str) -> None:
    theirs = _error(lambda: client_b.responses.retrieve(owned))
    missing = _error(lambda: client_b.responses.retrieve("resp_" + "0" * 48))
    assert theirs[0] is missing[0] is openai.NotFoundError
    assert theirs[1]["message"].replace(owned, "ID") == missing[1]["message"].replace(  # type: ignore[attr-defined]
        "resp_" + "0" * 48, "ID"
    )


def test_stream_retrieve_is_404(client_b: OpenAI, owned: str) -> None:
    with pytest.raises(openai.NotFoundError):
        list(client_b.responses.retrieve(owned, stream=True))


def test_input_items_delete_cancel_are_404(client_b: OpenAI, owned: str) -> None:
    with pytest.raises(openai.NotFoundError):
        client_b.responses.input_items.list(owned)
    with pytest.raises(openai.NotFoundError):
        client_b.responses.delete(owned)
    with pytest.raises(openai.NotFoundError):
        client_b.responses.cancel(owned)


def test_previous_response_id_of_another_project(
    client: OpenAI, client_b: OpenAI, owned: str
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client_b.responses.create(model=FAST_MODEL, input="x", previous_response_id=owned)
    assert err.value.body["param"] == "previous_response_id"  # type: ignore[index]
    # The owner still has it, untouched.
    assert client.responses.retrieve(owned).output_text
