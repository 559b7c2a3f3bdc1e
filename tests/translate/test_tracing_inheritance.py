"""Telemetry tracing inheritance (compiler.translate.tracing.merge) and its fallbacks, case by case against Pilot's
Telemetries.Tracing (pilot/pkg/model/telemetry.go) and configureTracingFromTelemetry
(pilot/pkg/networking/core/tracing.go): each entry matching a side overrides the fields it sets, the more specific
level last; a field left unset is inherited, down to defaultProviders and MeshConfig's sampling."""

from __future__ import annotations

from typing import Any

from compiler import model
from compiler.api.mesh_config import MeshConfig, TracingConfig
from compiler.api.telemetry import CustomTag, Tracing
from compiler.translate.tracing import merge, mesh_sampling, service_cluster, tags

PROXY = model.Proxy("sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local", model.ProxyKind.SIDECAR, "10.0.0.1",
                    "web-1", "shop")


def _entry(*providers: str, **fields: Any) -> Tracing:
    return Tracing.model_validate({"providers": [{"name": p} for p in providers], **fields}, by_alias=True)


def test_no_telemetry_and_no_default_provider_is_the_legacy_path() -> None:
    assert merge([], [], "CLIENT") is None


def test_the_first_default_provider_serves_both_sides() -> None:
    for mode in ("CLIENT", "SERVER"):
        spec = merge([], ["zipkin", "otel"], mode)
        assert spec is not None and (spec.provider, spec.disabled, spec.sampling) == ("zipkin", False, None)
        assert spec.use_request_id and spec.istio_tags


def test_a_mode_match_overrides_one_side_only() -> None:
    entries = [_entry("zipkin"), _entry("otel", match={"mode": "SERVER"}, randomSamplingPercentage=5)]
    server, client = merge(entries, [], "SERVER"), merge(entries, [], "CLIENT")
    assert server is not None and (server.provider, server.sampling) == ("otel", 5)
    assert client is not None and (client.provider, client.sampling) == ("zipkin", None)


def test_a_later_entry_without_providers_keeps_the_inherited_provider() -> None:
    spec = merge([_entry("zipkin", randomSamplingPercentage=50), _entry(disableSpanReporting=True)], ["otel"],
                 "CLIENT")
    assert spec is not None and (spec.provider, spec.sampling, spec.disabled) == ("zipkin", 50, True)


def test_custom_tags_are_replaced_not_merged() -> None:
    tag = {"literal": {"value": "x"}}
    spec = merge([_entry(customTags={"a": tag}), _entry(customTags={"b": tag})], ["zipkin"], "CLIENT")
    assert spec is not None and spec.custom_tags is not None and set(spec.custom_tags) == {"b"}


def test_the_first_provider_of_an_entry_is_used() -> None:
    spec = merge([_entry("otel", "zipkin")], [], "SERVER")
    assert spec is not None and spec.provider == "otel"


def test_telemetry_without_provider_or_defaults_has_no_provider() -> None:
    spec = merge([_entry(randomSamplingPercentage=10)], [], "CLIENT")
    assert spec is not None and spec.provider is None


def test_mesh_sampling_falls_back_to_pilots_default_for_unset_and_zero() -> None:
    assert mesh_sampling(MeshConfig()) == 1.0
    for sampling, expected in ((0, 1.0), (0.5, 0.5), (100, 100)):
        config = MeshConfig.model_validate({"defaultConfig": {"tracing": {"sampling": sampling}}}, by_alias=True)
        assert mesh_sampling(config) == expected


def test_istio_tags_and_the_telemetry_tags_sorted_or_the_telemetry_tags_alone() -> None:
    spec = merge([_entry(customTags={"a-team": {"header": {"name": "x-team", "defaultValue": "none"}}})],
                 ["zipkin"], "CLIENT")
    assert spec is not None
    names = [t.tag for t in tags(spec, PROXY, TracingConfig())]
    assert names == sorted(names) and names[0] == "a-team" and "istio.namespace" in names and len(names) == 10
    spec.istio_tags = False
    assert tags(spec, PROXY, TracingConfig()) == (model.SpanTag("a-team", model.TagKind.REQUEST_HEADER, "x-team", "none"),)


def test_without_telemetry_tags_the_mesh_default_tags_apply() -> None:
    defaults = TracingConfig.model_validate({"customTags": {"pod": {"environment": {"name": "POD_NAME"}}}},
                                            by_alias=True)
    spec = merge([_entry(enableIstioTags=False)], ["zipkin"], "CLIENT")
    assert spec is not None
    assert tags(spec, PROXY, defaults) == (model.SpanTag("pod", model.TagKind.ENVIRONMENT, "POD_NAME"),)
    spec.custom_tags = {"team": CustomTag.model_validate({"literal": {"value": "a"}})}
    assert [t.tag for t in tags(spec, PROXY, defaults)] == ["team"]


def test_the_opentelemetry_service_name_is_istios_service_cluster() -> None:
    assert service_cluster(PROXY) == "istio-proxy.shop"
    labelled = model.Proxy(PROXY.node_id, PROXY.kind, PROXY.ip, PROXY.name, PROXY.namespace,
                           (("app.kubernetes.io/name", "web"), ("app", "frontend")))
    assert service_cluster(labelled) == "frontend.shop"
