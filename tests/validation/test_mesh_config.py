"""MeshConfig in the istio ConfigMap (compiler.mesh_config): which ConfigMap is read, Istio's defaults, and every
diagnostic about the embedded YAML located at its line and column in the ConfigMap's file."""

from __future__ import annotations

import pytest

from compiler import diagnostics, load, mesh_config, pipeline, typed, validate
from compiler.api.mesh_config import MeshConfig
from compiler.resources import Resource

HEAD = "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\n  namespace: {ns}\ndata:\n"


def config_map(mesh: str, ns: str = "istio-system") -> str:
    return HEAD.format(ns=ns) + mesh


def resources(text: str) -> list[Resource]:
    loaded = load.load_text(text, "m.yaml")
    assert loaded.diagnostics == []
    found, problems = typed.to_resources(loaded.documents)
    assert problems == []
    return found


def check(text: str) -> list[tuple[str, int, int]]:
    return [(d.code, d.position.line, d.position.column) for d in validate.validate(resources(text))]


def test_no_config_map_is_istios_defaults() -> None:
    config = mesh_config.config_of([])
    assert config == MeshConfig()
    assert (config.root_namespace, config.trust_domain, config.registry_only) == ("istio-system", "cluster.local",
                                                                                   False)


@pytest.mark.parametrize("indicator", ["|", "|-", "|+", ">"])
def test_block_scalar_errors_at_their_line_in_the_file(indicator: str) -> None:
    mesh = f"  mesh: {indicator}\n    accessLogFile: /dev/stdout\n\n    outboundTrafficPolicy:\n      mode: NONE\n"
    assert check(config_map(mesh)) == [("MW0102", 12, 7)]  # `mode:` is the file's 12th line, column 7


def test_quoted_value_errors_at_the_mesh_key() -> None:
    found = check(config_map('  mesh: "connectTimeout: 0.1ms"\n'))
    assert ("MW0202", 8, 1) in found, found  # no line of its own: the `mesh` key's line


def test_yaml_error_inside_the_block_at_its_line() -> None:
    found = check(config_map("  mesh: |\n    a: 1\n    b: [\n"))
    assert [code for code, _, _ in found] == ["MW0001"] and found[0][1] >= 10


def test_the_embedded_text_is_held_to_the_loaders_limits() -> None:
    """The `mesh` string is a YAML document the loader never measured (to it, one scalar): an alias bomb or a
    deep nesting inside it is the loader's own MW0017 / MW0016 at its line, before a parser or a model walks it."""
    laughs = "    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    assert [(code, line) for code, line, _ in check(config_map("  mesh: |\n" + laughs))] == [("MW0017", 14)]
    deep = "x: " + "[" * 500 + "]" * 500 + "\n"
    (alone,) = load.load_text(deep, "deep.yaml").diagnostics  # the loader's own column for it, on a line alone
    assert check(config_map("  mesh: |\n    " + deep)) == [("MW0016", 9, alone.position.column + 4)]


def test_unknown_field_is_a_warning_with_a_suggestion() -> None:
    found = validate.validate(resources(config_map("  mesh: |\n    accessLogFiles: /dev/stdout\n")))
    assert [(d.code, d.severity, d.position.line) for d in found] == [("MW0104", diagnostics.Severity.WARNING, 9)]
    assert 'did you mean "accessLogFile"' in found[0].message


def test_modeled_but_not_compiled_is_said() -> None:
    mesh = "  mesh: |\n    accessLogFile: /dev/stdout\n    enableTracing: true\n"
    assert check(config_map(mesh)) == [("MW0403", 10, 5)]


@pytest.mark.parametrize(("value", "ok"), [("5s", True), ("1h", True), ("0s", False), ("-1s", False),
                                           ("61m", False), ("1.0005s", False), ("soon", False)])
def test_connect_timeout_is_held_to_istios_range(value: str, ok: bool) -> None:
    """pkg/config/validation/agent ValidateConnectTimeout: at least 1ms, at most 1h, millisecond precision."""
    found = check(config_map(f"  mesh: |\n    connectTimeout: {value}\n"))
    assert found == ([] if ok else [("MW0202", 9, 5)]), found


@pytest.mark.parametrize("key", ["defaultServiceExportTo", "defaultVirtualServiceExportTo",
                                 "defaultDestinationRuleExportTo"])
def test_default_export_to_entries_are_checked_at_their_line(key: str) -> None:
    found = check(config_map(f"  mesh: |\n    {key}:\n    - .\n    - Not_A_Namespace\n"))
    assert found == [("MW0223", 11, 7)], found


def test_the_mesh_locality_setting_is_held_to_istios_rules() -> None:
    """ValidateMeshConfig runs ValidateLocalityLbSetting on it, as on a DestinationRule's."""
    mesh = ("  mesh: |\n    localityLbSetting:\n      distribute:\n      - from: a/*\n        to: {a/*: 60, b/*: 30}\n"
            "      failover:\n      - {from: a, to: a}\n")
    assert check(config_map(mesh)) == [("MW0217", 9, 5), ("MW0217", 12, 9), ("MW0217", 14, 9)]


def test_failover_priority_may_not_name_a_locality_label_beside_failover() -> None:
    """ValidateLocalityLbSetting: failover ranks regions already; labels of the network or the workload may be."""
    mesh = ("  mesh: |\n    localityLbSetting:\n      failover:\n      - {from: a, to: b}\n      failoverPriority:\n"
            "      - topology.istio.io/network\n      - topology.kubernetes.io/zone\n")
    assert check(config_map(mesh)) == [("MW0217", 14, 9)]
    assert check(config_map(mesh.replace("      failover:\n      - {from: a, to: b}\n", ""))) == []


def test_an_unknown_h2_upgrade_policy_is_an_error_at_its_line() -> None:
    assert check(config_map("  mesh: |\n    h2UpgradePolicy: SOMETIMES\n")) == [("MW0102", 9, 5)]


def test_provider_references_are_checked() -> None:
    mesh = ("  mesh: |\n    extensionProviders:\n    - name: z\n      zipkin: {service: zipkin.obs.svc.cluster.local}\n"
            "    defaultProviders: {tracing: [z, y]}\n")
    found = [(c, line) for c, line, _ in check(config_map(mesh)) if c == "MW0240"]
    assert found == [("MW0240", 11), ("MW0240", 12)]  # the zipkin port; the unknown provider y


def test_the_istio_system_config_map_is_read_and_others_are_flagged() -> None:
    text = config_map("  mesh: 'accessLogFile: /a'\n") + "---\n" + config_map("  mesh: 'accessLogFile: /b'\n", "x")
    found = resources(text)
    assert mesh_config.config_of(found).access_log_file == "/a"
    assert [d.code for d in validate.validate(found)] == ["MW0105"]


def test_a_config_map_in_its_own_root_namespace_is_read() -> None:
    found = resources(config_map("  mesh: |\n    rootNamespace: mesh-root\n    accessLogFile: /c\n", "mesh-root"))
    assert mesh_config.config_of(found).access_log_file == "/c"


_POLICY_AND_POD = """---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: mesh-root}
spec: {}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: app, labels: {app: web}, annotations: {sidecar.istio.io/status: '{}'}}
spec:
  containers: [{name: web, image: web}, {name: istio-proxy, image: proxyv2}]
"""


@pytest.mark.parametrize(("mesh", "flagged"), [("  mesh: 'rootNamespace: mesh-root'\n", False),
                                               ("  mesh: 'accessLogFile: /dev/stdout'\n", True)])
def test_analyzers_read_the_root_namespace(mesh: str, flagged: bool) -> None:
    """A policy without selector in the root namespace applies to the whole mesh; anywhere else, to its own
    namespace, which has no workload here (MW0326, Istio's IST0127)."""
    loaded = load.load_text(config_map(mesh) + _POLICY_AND_POD, "m.yaml")
    codes = [d.code for d in pipeline.check_documents(loaded.documents).diagnostics]
    assert ("MW0326" in codes) is flagged, codes
