"""Request bodies of /v1/containers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from kotae.ids import FileIdField
from kotae.schemas.common import StrictModel


class ContainerExpiry(StrictModel):
    anchor: Literal["last_active_at"]
    minutes: Annotated[int, Field(ge=1, le=20 * 24 * 60)]


class NetworkPolicy(StrictModel):
    type: Literal["disabled", "allowlist"]
    allowed_domains: list[str] | None = None


class CreateContainer(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    expires_after: ContainerExpiry | None = None
    file_ids: Annotated[list[FileIdField], Field(max_length=100)] | None = None
    memory_limit: Literal["1g", "4g", "16g", "64g"] | None = None
    network_policy: NetworkPolicy | None = None
    skills: list[dict[str, Any]] | None = None

    @field_validator("network_policy")
    @classmethod
    def _no_network(cls, value: NetworkPolicy | None) -> NetworkPolicy | None:
        # A container never reaches the network here; an allow-list would promise it does.
        if value is not None and value.type != "disabled":
            raise ValueError("this server's containers have no network: use type 'disabled'")
        return value

    @field_validator("skills")
    @classmethod
    def _no_skills(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value:
            raise ValueError("skills are not supported by this server")
        return value
