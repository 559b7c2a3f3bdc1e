"""Telemetry `metrics` per proxy (compiler.translate.telemetry_metrics), case by case against Pilot's mergeMetrics
(pilot/pkg/model/telemetry.go): which Istio metrics a proxy's bootstrap leaves out, which labels it does not
extract, and its flush interval."""

from __future__ import annotations

from translate_harness import SHOP, config_for

from compiler import model
from compiler.translate.telemetry_metrics import ISTIO_METRICS

NODE = "sidecar~10.0.0.1~reviews-v1.shop~shop.svc.cluster.local"


def _telemetry(name: str, namespace: str, metrics: str, selector: str = "") -> str:
    return (f"---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {{name: {name}, namespace: "
            f"{namespace}}}\nspec:\n{selector}  metrics:\n{metrics}")


def _mesh(body: str) -> str:
    indented = "".join(f"    {line}\n" for line in body.splitlines())
    return f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: istio, namespace: istio-system}}\ndata:\n  mesh: |\n{indented}"


def _metrics(*docs: str) -> model.Metrics:
    return config_for(SHOP + "".join(docs), NODE).metrics


ROOT_OFF = _telemetry("off", "istio-system", "  - overrides:\n    - match: {metric: ALL_METRICS}\n      disabled: true\n")


def test_without_telemetry_the_proxy_keeps_envoys_defaults() -> None:
    assert _metrics() == model.Metrics()


def test_a_namespace_turns_back_on_what_the_root_namespace_turned_off() -> None:
    assert _metrics(ROOT_OFF).disabled == ISTIO_METRICS
    back = _telemetry("on", "shop", "  - overrides:\n    - match: {metric: REQUEST_COUNT}\n      disabled: false\n")
    assert _metrics(ROOT_OFF, back).disabled == ()


def test_a_server_side_override_leaves_the_calling_side_alone() -> None:
    server = _telemetry("off", "shop", "  - overrides:\n    - match: {mode: SERVER}\n      disabled: true\n")
    assert _metrics(server) == model.Metrics()


def test_one_disabled_metric_and_the_workload_level_wins() -> None:
    ns = _telemetry("ns", "shop", "  - overrides:\n    - match: {metric: REQUEST_DURATION}\n      disabled: true\n")
    workload = _telemetry("wl", "shop", "  - overrides:\n    - match: {metric: REQUEST_DURATION}\n      disabled: false\n",
                          "  selector: {matchLabels: {version: v1}}\n")
    assert _metrics(ns).disabled == ("REQUEST_DURATION",)
    assert _metrics(ns, workload).disabled == ()


def test_providers_without_prometheus_turn_every_metric_off() -> None:
    mesh = _mesh("extensionProviders:\n- name: stdout\n  envoyFileAccessLog: {path: /dev/stdout}\n"
                 "defaultProviders:\n  metrics: [stdout]\n")
    assert _metrics(mesh).disabled == ISTIO_METRICS
    named = _telemetry("ns", "shop", "  - providers: [{name: prometheus}]\n")
    assert _metrics(mesh, named) == model.Metrics()


def test_a_label_is_removed_only_when_removed_from_every_metric() -> None:
    remove = ("  - overrides:\n    - match: {metric: ALL_METRICS}\n      tagOverrides:\n"
              "        destination_subset: {operation: REMOVE}\n")
    assert _metrics(_telemetry("root", "istio-system", remove)).removed_tags == ("destination_subset",)
    upsert = ("  - overrides:\n    - match: {metric: REQUEST_COUNT}\n      tagOverrides:\n"
              "        destination_subset: {value: 'x'}\n")
    assert _metrics(_telemetry("root", "istio-system", remove), _telemetry("ns", "shop", upsert)).removed_tags == ()


def test_the_reporting_interval_is_inherited_by_the_entries_naming_no_provider() -> None:
    root = _telemetry("root", "istio-system", "  - providers: [{name: prometheus}]\n    reportingInterval: 1.5s\n")
    ns = _telemetry("ns", "shop", "  - overrides:\n    - match: {metric: TCP_SENT_BYTES}\n      disabled: true\n")
    assert _metrics(root, ns) == model.Metrics(disabled=("TCP_SENT_BYTES",), flush_interval_ms=1500)


def test_an_interval_envoy_cannot_flush_at_keeps_its_default() -> None:
    root = _telemetry("root", "istio-system", "  - providers: [{name: prometheus}]\n    reportingInterval: 5m\n")
    assert _metrics(root) == model.Metrics()
