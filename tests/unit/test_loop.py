"""The agent loop's constrained decision: a forced call always has arguments its schema
accepts."""

from __future__ import annotations

import jsonschema

from kotae.services.responses.loop import schema_arguments


def test_a_forced_call_the_model_could_not_write_is_valid_for_its_schema() -> None:
    """An MCP tool whose schema requires `name`: the arguments made for a forced call that
    the model never closed hold it (they were `{}`, and the server refused them)."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer", "minimum": 2},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "note": {"type": "string"},
        },
        "required": ["name", "count", "mode", "tags"],
    }
    made = schema_arguments(schema, "Tokyo")
    assert made == {"name": "Tokyo", "count": 2, "mode": "fast", "tags": ["Tokyo"]}
    jsonschema.validate(made, schema)
    assert schema_arguments({"type": "object", "properties": {}}, "x") == {}
