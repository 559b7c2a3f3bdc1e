"""ServiceEntry (networking.istio.io): adds hosts (external or mesh-internal) to the service registry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from compiler.api.base import ApiModel, UInt32
from compiler.api.common import WorkloadSelector
from compiler.api.workload_entry import WorkloadEntry

__all__ = ["ServiceEntry", "ServicePort", "WorkloadEntry", "WorkloadSelector"]

Resolution = Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"]


class ServicePort(ApiModel):
    number: UInt32
    protocol: Annotated[str, Field(max_length=256)] | None = None
    name: Annotated[str, Field(max_length=256)]
    target_port: UInt32 | None = None


class ServiceEntry(ApiModel):
    hosts: list[str] = Field(min_length=1, max_length=256)
    addresses: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=256)
    ports: list[ServicePort] | None = Field(None, max_length=256)
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Resolution | None = None
    endpoints: list[WorkloadEntry] | None = Field(None, max_length=4096)
    workload_selector: WorkloadSelector | None = None
    export_to: list[str] | None = None
    subject_alt_names: list[str] | None = None
