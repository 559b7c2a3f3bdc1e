"""`meshward inject`: every workload kind gets Envoy and the agent, other documents and comments stay as written,
injecting twice is injecting once, opt-outs are respected, bad input is a located error; and the injected Envoy,
run as the kubelet would run it, gets its config from a real `serve` and carries traffic."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import gateway_tree
import mesh_tree
import pod_runner
import pytest
from ruamel.yaml import YAML

from reconciler.inject import manifests, sidecar

POD_SPEC = "containers:\n  - name: app  # the application\n    image: example/app:1\n"


def workload(kind: str, name: str = "web", *, labels: str = "{app: web}", annotations: str = "{}") -> str:
    if kind == "Pod":
        return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {labels}\n"
                f"  annotations: {annotations}\nspec:\n  " + POD_SPEC.replace("\n  ", "\n    ").rstrip(" "))
    template = ("  template:\n    metadata:\n      labels: " + labels + "\n      annotations: " + annotations +
                "\n    spec:\n      " + POD_SPEC.replace("\n  ", "\n        "))
    return f"apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{template}"


def load(text: str) -> list[Any]:
    return list(YAML(typ="safe").load_all(text))


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"])


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"])
def test_every_workload_kind_gets_envoy_and_the_agent(kind: str) -> None:
    options = sidecar.Options(xds_address="meshward.mesh.svc:15010", ca_address="meshward.mesh.svc:15012")
    injected = manifests.inject_stream(workload(kind), options)
    assert [d for _, d in injected.decisions] == [sidecar.Decision.INJECTED]
    spec = pod_spec(load(injected.text)[0])
    assert [c["name"] for c in spec["containers"]] == ["app", sidecar.PROXY, sidecar.AGENT]
    proxy, agent = spec["containers"][1:]
    config = json.loads(proxy["args"][proxy["args"].index("--config-yaml") + 1])
    xds = config["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert xds["endpoint"]["address"]["socket_address"] == {"address": "meshward.mesh.svc", "port_value": 15010}
    assert "node" not in config, "the node id is the pod's, given by --service-node"
    node = proxy["args"][proxy["args"].index("--service-node") + 1]
    assert node == "sidecar~$(POD_IP)~$(POD_NAME).$(POD_NAMESPACE)~$(POD_NAMESPACE).svc.cluster.local"
    assert f"--node={node}" in agent["args"] and "--ca-address=meshward.mesh.svc:15012" in agent["args"]
    socket = {m["mountPath"] for c in (proxy, agent) for m in c["volumeMounts"] if m["name"] == "meshward-sds"}
    assert len(socket) == 1, "Envoy and the agent share the SDS socket's volume"
    assert {v["name"] for v in spec["volumes"]} == {"meshward-sds", "meshward-token", "meshward-ca-root"}
    token = next(v for v in spec["volumes"] if v["name"] == "meshward-token")
    assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "istio-ca"


def proxy_config(doc: dict[str, Any]) -> dict[str, Any]:
    proxy = next(c for c in pod_spec(doc)["containers"] if c["name"] == sidecar.PROXY)
    config: dict[str, Any] = json.loads(proxy["args"][proxy["args"].index("--config-yaml") + 1])
    return config


def fixed_tags(config: dict[str, Any]) -> dict[str, str]:
    return {t["tag_name"]: t["fixed_value"] for t in config["stats_config"]["stats_tags"] if "fixed_value" in t}


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "StatefulSet"])
def test_the_injected_envoy_serves_istios_metrics_endpoint(kind: str) -> None:
    """As `meshward bootstrap` does: :15090/stats/prometheus read from the admin interface, and Istio's labels on
    the stats (the workload's name; the pod's namespace, which Kubernetes expands in the args)."""
    doc = load(manifests.inject_stream(workload(kind, "reviews-v1"), sidecar.Options()).text)[0]
    config = proxy_config(doc)
    listener = config["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": sidecar.STATS_PORT}
    assert "prometheus_stats" in {c["name"] for c in config["static_resources"]["clusters"]}
    assert fixed_tags(config) == {"reporter": "source", "source_workload": "reviews-v1",
                                  "source_workload_namespace": "$(POD_NAMESPACE)"}
    assert {"destination_service", "destination_subset", "response_code"} <= {
        t["tag_name"] for t in config["stats_config"]["stats_tags"]}
    proxy = next(c for c in pod_spec(doc)["containers"] if c["name"] == sidecar.PROXY)
    assert proxy["ports"] == [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}]
    metadata = doc["metadata"] if kind == "Pod" else doc["spec"]["template"]["metadata"]
    assert {k: v for k, v in metadata["annotations"].items() if k.startswith("prometheus.io/")} == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "15090", "prometheus.io/path": "/stats/prometheus"}


def test_the_only_variables_in_the_args_are_the_pods() -> None:
    """Kubernetes expands `$(VAR)` in args and reads `$$` as `$`: the regexes of the stats tags must hold neither."""
    doc = load(manifests.inject_stream(workload("Deployment"), sidecar.Options()).text)[0]
    proxy = next(c for c in pod_spec(doc)["containers"] if c["name"] == sidecar.PROXY)
    for arg in proxy["args"]:
        assert "$$" not in arg
        assert set(pod_runner.VAR.findall(arg)) <= {"POD_IP", "POD_NAME", "POD_NAMESPACE"}


@pytest.mark.parametrize(("annotations", "expected"), [
    ("{prometheus.io/scrape: 'false'}", {"prometheus.io/scrape": "false"}),
    ("{prometheus.io/port: '8080', prometheus.io/scrape: 'true'}",
     {"prometheus.io/port": "8080", "prometheus.io/scrape": "true"}),
])
def test_a_pods_own_scrape_annotations_are_kept(annotations: str, expected: dict[str, str]) -> None:
    """No agent merges the application's metrics into Envoy's (Istio's prometheus merge): the pod's own win."""
    doc = load(manifests.inject_stream(workload("Pod", annotations=annotations), sidecar.Options()).text)[0]
    assert {k: v for k, v in doc["metadata"]["annotations"].items() if k.startswith("prometheus.io/")} == expected


@pytest.mark.parametrize(("metadata", "name"), [
    ({"name": "web-0"}, "web-0"),
    ({"generateName": "web-6d4cf56db6-", "labels": {"pod-template-hash": "6d4cf56db6"},
      "ownerReferences": [{"kind": "ReplicaSet", "name": "web-6d4cf56db6", "controller": True}]}, "web"),
    ({"generateName": "web-", "ownerReferences": [{"kind": "StatefulSet", "name": "web", "controller": True}]},
     "web"),
    ({"generateName": "backup-28000000-", "ownerReferences": [
        {"kind": "Job", "name": "backup-28000000", "controller": True}]}, "backup"),
    ({"generateName": "x-", "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": False}]},
     "$(POD_NAME)"),
])
def test_the_workload_of_a_pod_is_istios(metadata: dict[str, Any], name: str) -> None:
    """pkg/kube/util.go GetDeployMetaFromPod: the controller's name, a ReplicaSet's Deployment, a Job's CronJob."""
    assert sidecar.workload_of({"kind": "Pod"}, metadata) == name


STREAM = f"""\
# The shop: a Service, its Deployment and a ConfigMap.
apiVersion: v1
kind: Service
metadata: {{name: web,   namespace: shop}}   # odd spacing, kept
spec: {{ports: [{{port: 80}}]}}
---
# the workload
{workload("Deployment")}---
apiVersion: v1
kind: ConfigMap
metadata:
    name: settings
data:
    key: "quoted"
"""


def test_other_documents_are_kept_as_written_and_comments_survive() -> None:
    out = manifests.inject_stream(STREAM, sidecar.Options()).text
    before, after = STREAM.split("---\n"), out.split("---\n")
    assert len(after) == 3
    assert after[0] == before[0] and after[2] == before[2], "untouched documents are copied byte for byte"
    assert "# the workload" in after[1] and "# the application" in after[1]
    assert [d["kind"] for d in load(out)] == ["Service", "Deployment", "ConfigMap"]


def test_the_workloads_of_a_list_are_injected() -> None:
    items = textwrap.indent(workload("Deployment"), "  ")[2:]
    listed = f"apiVersion: v1\nkind: List\nitems:\n- {items}- apiVersion: v1\n  kind: Service\n  metadata: {{name: web}}\n"
    injected = manifests.inject_stream(listed, sidecar.Options())
    assert injected.decisions == (("Deployment web", sidecar.Decision.INJECTED),)
    deployment, service = load(injected.text)[0]["items"]
    assert [c["name"] for c in pod_spec(deployment)["containers"]] == ["app", sidecar.PROXY, sidecar.AGENT]
    assert service == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}


def test_injecting_twice_is_injecting_once() -> None:
    once = manifests.inject_stream(STREAM, sidecar.Options())
    twice = manifests.inject_stream(once.text, sidecar.Options())
    assert twice.text == once.text
    assert [d for _, d in twice.decisions] == [sidecar.Decision.ALREADY_INJECTED]


@pytest.mark.parametrize(("doc", "decision"), [
    (workload("Deployment", labels="{app: web, sidecar.istio.io/inject: 'false'}"), sidecar.Decision.OPTED_OUT),
    (workload("Pod", annotations="{sidecar.istio.io/inject: 'false'}"), sidecar.Decision.OPTED_OUT),
    (workload("Pod").replace("spec:\n", "spec:\n  hostNetwork: true\n"), sidecar.Decision.HOST_NETWORK),
], ids=["label", "annotation", "hostNetwork"])
def test_opted_out_pods_are_left_alone(doc: str, decision: sidecar.Decision) -> None:
    injected = manifests.inject_stream(doc, sidecar.Options())
    assert injected.text == doc
    assert [d for _, d in injected.decisions] == [decision]


def _cli(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshward", "inject", *args, "-"], input=text, check=False,
                          capture_output=True, text=True, timeout=60)


def test_the_command_reads_stdin_and_writes_the_injected_stream() -> None:
    done = _cli(STREAM, "--proxy-image", "envoy:test")
    assert done.returncode == 0, done.stderr
    assert done.stdout == manifests.inject_stream(STREAM, sidecar.Options(proxy_image="envoy:test")).text
    assert done.stderr == "meshward inject: Deployment web: injected\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("apiVersion: v1\nkind: Service\n---\nkind: [unclosed\n", "<stdin>:5:1: error MW0001: "),
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n",
     "<stdin>:1:1: error MW0006: Deployment web: spec.template.spec.containers is not a list of containers"),
], ids=["syntax", "no-pod-spec"])
def test_bad_input_is_a_located_error_and_nothing_is_written(text: str, expected: str) -> None:
    done = _cli(text)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(expected) and "Traceback" not in done.stderr, done.stderr


CLIENT_IP = "127.0.0.173"


@pytest.mark.envoy
def test_the_injected_envoy_gets_its_config_from_serve_and_carries_traffic(tmp_path: Path, envoy_bin: str) -> None:
    from serve_harness import ServeHarness

    from reconciler import serve

    with mesh_tree.backend() as backend_port:
        work = mesh_tree.write(tmp_path / "work", client_ip=CLIENT_IP, backend_port=backend_port)
        gateway_tree.make_repo(work)
        harness = ServeHarness(serve.ServeConfig(repo=str(work), poll_interval=3600, xds_address="127.0.0.1:0",
                                                 admin_address="127.0.0.1:0"), tmp_path / "serve")
        try:
            options = sidecar.Options(xds_address=f"127.0.0.1:{harness.server.xds_port}")
            pod = load(manifests.inject_stream(workload("Pod", "client", labels="{app: client}"), options).text)[0]
            env = {"POD_IP": CLIENT_IP, "POD_NAME": "client", "POD_NAMESPACE": "shop"}
            with pod_runner.running_proxy(pod, env, tmp_path / "envoy.log") as (_, _, stats_port):
                request = urllib.request.Request(f"http://{CLIENT_IP}:{mesh_tree.SERVICE_PORT}/",
                                                 headers={"Host": mesh_tree.HOST})
                with urllib.request.urlopen(request, timeout=10) as resp:
                    assert resp.read() == b"hello from web\n"
                proxies = harness.get("/debug/proxies")
                assert mesh_tree.node(CLIENT_IP) in {p["node_id"] for p in proxies}
                with urllib.request.urlopen(f"http://{CLIENT_IP}:{stats_port}/stats/prometheus", timeout=10) as resp:
                    metrics = resp.read().decode()
            # the request, counted with Istio's labels (the namespace as Kubernetes expands it)
            wanted = (f'destination_service="{mesh_tree.HOST}"', 'source_workload="client"',
                      'source_workload_namespace="shop"', 'reporter="source"')
            counted = [line for line in metrics.splitlines()
                       if line.startswith("envoy_cluster_upstream_rq_total{") and all(w in line for w in wanted)]
            assert counted and counted[0].endswith(" 1"), metrics[:2000]
        finally:
            harness.close()
