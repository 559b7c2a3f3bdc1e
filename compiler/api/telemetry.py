"""Telemetry (telemetry.istio.io): a root-namespace, namespace or workload's access logging, tracing and metrics.

Access logging (compiler.translate.telemetry), tracing (compiler.translate.tracing) and metrics (into bootstraps:
compiler.translate.telemetry_metrics) are compiled.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compiler.api.base import ApiModel, Duration
from compiler.api.common import PolicyTargetReference, TypeWorkloadSelector

WorkloadMode = Literal["CLIENT", "SERVER", "CLIENT_AND_SERVER"]
IstioMetric = Literal["ALL_METRICS", "REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE", "RESPONSE_SIZE",
                      "TCP_OPENED_CONNECTIONS", "TCP_CLOSED_CONNECTIONS", "TCP_SENT_BYTES", "TCP_RECEIVED_BYTES",
                      "GRPC_REQUEST_MESSAGES", "GRPC_RESPONSE_MESSAGES"]


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


class TracingSelector(ApiModel):
    mode: WorkloadMode = "CLIENT_AND_SERVER"


class LiteralTag(ApiModel):
    value: str = Field(min_length=1)


class EnvironmentTag(ApiModel):
    name: str = Field(min_length=1)
    default_value: str = ""


class HeaderTag(ApiModel):
    name: str = Field(min_length=1)
    default_value: str = ""


class FormatterTag(ApiModel):
    value: str = Field(min_length=1)


class CustomTag(ApiModel):
    """One span tag: a literal, an environment variable of the proxy, a request header, or an access-log
    formatter (command operators such as %REQ(...)%)."""

    literal: LiteralTag | None = None
    environment: EnvironmentTag | None = None
    header: HeaderTag | None = None
    formatter: FormatterTag | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CustomTag:
        """The CRD allows a tag of no kind, which Pilot turns into a CustomTag Envoy rejects (its `type` is
        required): one kind exactly."""
        if sum(kind is not None for kind in (self.literal, self.environment, self.header, self.formatter)) != 1:
            raise ValueError("a custom tag sets exactly one of literal, environment, header, formatter")
        return self


class Tracing(ApiModel):
    match: TracingSelector | None = None
    providers: list[ProviderRef] | None = None
    random_sampling_percentage: float | None = Field(None, ge=0, le=100)
    disable_span_reporting: bool | None = None
    custom_tags: dict[str, CustomTag] | None = None
    use_request_id_for_trace_sampling: bool | None = None
    enable_istio_tags: bool | None = None
    disable_context_propagation: bool | None = None


class MetricSelector(ApiModel):
    metric: IstioMetric | None = None
    custom_metric: str | None = Field(None, min_length=1)
    mode: WorkloadMode | None = None

    @model_validator(mode="after")
    def _one_metric(self) -> MetricSelector:
        """metricMatch is a oneof."""
        if self.metric is not None and self.custom_metric is not None:
            raise ValueError("set metric or customMetric, not both")
        return self


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
    tracing: list[Tracing] | None = None
    metrics: list[Metrics] | None = None
