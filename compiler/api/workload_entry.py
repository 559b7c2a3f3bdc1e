"""WorkloadEntry (networking.istio.io): a non-Kubernetes workload (VM, bare metal) and its properties."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from compiler.api.base import ApiModel, UInt32


class WorkloadEntry(ApiModel):
    address: Annotated[str, Field(max_length=256)] | None = None
    ports: dict[str, UInt32] | None = Field(None, max_length=128)
    labels: dict[str, str] | None = Field(None, max_length=256)
    network: Annotated[str, Field(max_length=2048)] | None = None
    locality: Annotated[str, Field(max_length=2048)] | None = None
    weight: UInt32 | None = None
    service_account: Annotated[str, Field(max_length=253)] | None = None
