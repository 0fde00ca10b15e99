"""Training-file checks: what passes, and errors that name the line."""

from __future__ import annotations

import json

import pytest

from kotae.training.data import InvalidTrainingFile, load_examples


def lines(rows: list[object]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


CHAT = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def test_chat_and_legacy_rows() -> None:
    rows = [CHAT] * 9 + [{"prompt": "p", "completion": "c"}]
    examples = load_examples(lines(rows) + b"\n\n")  # blank lines are fine
    assert len(examples) == 10
    assert examples[0][1] == {"role": "assistant", "content": "a", "weight": 1}
    assert examples[9] == [
        {"role": "user", "content": "p", "weight": 0},
        {"role": "assistant", "content": "c", "weight": 1},
    ]


def test_developer_is_system_and_weight_zero_turns_are_kept() -> None:
    row = {
        "messages": [
            {"role": "developer", "content": "be short"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "skip", "weight": 0},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "learn"},
        ]
    }
    [first, *_] = load_examples(lines([row] * 10))
    assert first[0]["role"] == "system"
    assert [m["weight"] for m in first] == [0, 0, 0, 0, 1]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (
            {"messages": [{"role": "assistant", "content": "x", "weight": 2}]},
            "weight must be 0 or 1",
        ),
        ({"messages": [{"role": "user", "content": ""}]}, "content must be a non-empty string"),
        (
            {"messages": [{"role": "assistant", "content": None, "tool_calls": [{}]}]},
            "tool calls are not supported",
        ),
        ({"prompt": 1, "completion": "x"}, "must be strings"),
        ([1, 2], "is not a JSON object"),
    ],
)
def test_errors_name_the_line(bad: object, says: str) -> None:
    with pytest.raises(InvalidTrainingFile) as err:
        load_examples(lines([CHAT] * 11 + [bad]))
    assert err.value.message.startswith("Line 12")
    assert says in err.value.message
    assert err.value.param == "training_file"


def test_not_utf8() -> None:
    with pytest.raises(InvalidTrainingFile, match="UTF-8"):
        load_examples(b"\xff\xfe" * 10, "validation_file")


def test_preference_rows() -> None:
    from kotae.training.data import load_preferences

    row = {
        "input": {
            "messages": [
                {"role": "developer", "content": "be kind"},
                {"role": "user", "content": "hi"},
            ]
        },
        "preferred_output": [{"role": "assistant", "content": "Hello!"}],
        "non_preferred_output": [{"role": "assistant", "content": "What."}],
    }
    [first, *_] = load_preferences(lines([row] * 10))
    assert first["prompt"][0]["role"] == "system"
    assert (first["chosen"], first["rejected"]) == ("Hello!", "What.")
    bad = {**row, "non_preferred_output": [{"role": "user", "content": "x"}]}
    with pytest.raises(InvalidTrainingFile, match="Line 11: 'non_preferred_output' must be"):
        load_preferences(lines([row] * 10 + [bad]))
