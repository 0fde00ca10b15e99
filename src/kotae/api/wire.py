"""An SDK object as its JSON body: only the fields kotae set, under their wire names (an
optional field kotae leaves out is absent, not null, as OpenAI's schemas describe it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def wire(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)
