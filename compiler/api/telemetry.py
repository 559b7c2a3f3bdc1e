"""Telemetry (telemetry.istio.io): a root-namespace, namespace or workload's access logging, tracing and metrics.

Access logging is compiled (compiler.translate.telemetry); tracing and metrics are typed loosely, as their fields
are reported as not compiled yet (compiler.coverage, MW0403).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from compiler.api.base import ApiModel, Duration
from compiler.api.common import PolicyTargetReference, TypeWorkloadSelector

WorkloadMode = Literal["CLIENT", "SERVER", "CLIENT_AND_SERVER"]


class ProviderRef(ApiModel):
    name: str = Field(min_length=1)


class LogSelector(ApiModel):
    mode: WorkloadMode = "CLIENT_AND_SERVER"


class Filter(ApiModel):
    expression: str = ""


class AccessLogging(ApiModel):
    providers: list[ProviderRef] | None = None
    disabled: bool | None = None
    match: LogSelector | None = None
    filter: Filter | None = None


class MetricSelector(ApiModel):
    metric: str | None = None
    custom_metric: str | None = Field(None, min_length=1)
    mode: WorkloadMode | None = None


class TagOverride(ApiModel):
    operation: Literal["UPSERT", "REMOVE"] = "UPSERT"
    value: str | None = None

    @model_validator(mode="after")
    def _value_by_operation(self) -> TagOverride:
        """The CRD's CEL rules on tagOverrides."""
        if self.operation == "UPSERT" and not self.value:
            raise ValueError("value must be set when operation is UPSERT")
        if self.operation == "REMOVE" and self.value:
            raise ValueError("value must not be set when operation is REMOVE")
        return self


class MetricsOverrides(ApiModel):
    match: MetricSelector | None = None
    disabled: bool | None = None
    tag_overrides: dict[str, TagOverride] | None = None


class Metrics(ApiModel):
    providers: list[ProviderRef] | None = None
    overrides: list[MetricsOverrides] | None = None
    reporting_interval: Duration | None = None


class Telemetry(ApiModel):
    selector: TypeWorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] | None = Field(None, max_length=16)
    access_logging: list[AccessLogging] | None = None
    tracing: list[dict[str, Any]] | None = None
    metrics: list[Metrics] | None = None
