"""deploy/'s manifests, as kustomize renders them: every file is in the kustomization, the Deployment's probes,
ports and security context hold together with the Service, NetworkPolicy, PodDisruptionBudget and the image."""

from __future__ import annotations

from typing import Any

import manifests
from dockerfile_parse import DockerfileParser

from meshward import cli


def test_the_kustomization_renders_every_manifest() -> None:
    kustomization = manifests.load_all((manifests.DEPLOY / "kustomization.yaml").read_text())[0]
    files = sorted(p.name for p in manifests.DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    rendered = manifests.rendered()
    written = [d for f in files for d in manifests.load_all((manifests.DEPLOY / f).read_text())]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in rendered) == \
        sorted((d["kind"], d["metadata"]["name"]) for d in written)
    namespaced = [d for d in rendered if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding",
                                                           "MutatingWebhookConfiguration")]
    assert {d["metadata"]["namespace"] for d in namespaced} == {manifests.one("Namespace")["metadata"]["name"]}


def test_the_deployment_runs_serve_with_flags_it_takes() -> None:
    deployment = manifests.one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    args = manifests.serve_args()
    assert all(a.startswith("--") for a in args), "flags only, as --name=value"
    cli._parser().parse_args(["serve", *args])  # exits (SystemExit) on a flag serve does not take


def _port_named(name_or_number: Any) -> dict[str, Any]:
    ports = manifests.container()["ports"]
    return next(p for p in ports if name_or_number in (p["name"], p["containerPort"]))


def test_probes_ask_the_admin_port() -> None:
    container = manifests.container()
    admin_port = int((manifests.flag(manifests.serve_args(), "--admin-address") or "").rpartition(":")[2])
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert _port_named(get["port"])["containerPort"] == admin_port


def test_every_container_port_is_in_the_service_and_let_in_by_the_network_policy() -> None:
    container_ports = {(p["name"], p["containerPort"]) for p in manifests.container()["ports"]}
    service = manifests.one("Service")["spec"]
    assert {(p["targetPort"], _port_named(p["targetPort"])["containerPort"]) for p in service["ports"]} == \
        container_ports
    assert all(p["name"] == p["targetPort"] for p in service["ports"]), "Istio's port names, protocol first"
    ingress = manifests.one("NetworkPolicy")["spec"]["ingress"]
    assert {p["port"] for rule in ingress for p in rule["ports"]} == {number for _, number in container_ports}


def test_selectors_find_the_pods() -> None:
    labels = manifests.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    selectors = [manifests.one("Service")["spec"]["selector"],
                 manifests.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                 manifests.one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
                 manifests.one("Deployment")["spec"]["selector"]["matchLabels"]]
    for selector in selectors:
        assert selector.items() <= labels.items()
    assert 0 < manifests.one("PodDisruptionBudget")["spec"]["minAvailable"] < manifests.one("Deployment")["spec"][
        "replicas"], "a voluntary eviction never takes the last replica, and never blocks a node drain for ever"


def _final_user() -> str:
    parser = DockerfileParser(str(manifests.ROOT / "Dockerfile"))
    final = [i for i in parser.structure if i["instruction"] == "FROM"][-1]["startline"]
    users = [i["value"] for i in parser.structure if i["instruction"] == "USER" and i["startline"] > final]
    return str(users[-1])


def test_the_pod_runs_unprivileged_on_a_read_only_root() -> None:
    pod, container = manifests.pod_spec(), manifests.container()
    uid, _, gid = _final_user().partition(":")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (str(pod["securityContext"]["runAsUser"]), str(pod["securityContext"]["runAsGroup"])) == (uid, gid)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # serve writes only to TMPDIR (its clone and exports): the Dockerfile points it at /tmp, an emptyDir here
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    ca_dir = manifests.flag(manifests.serve_args(), "--ca-dir")
    if ca_dir is not None:  # the CA's files come from a Secret, the same for every replica, and are only read
        assert mounts[ca_dir]["readOnly"] is True and "secret" in volumes[mounts[ca_dir]["name"]]


def test_resources_are_requested() -> None:
    resources = manifests.container()["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "cpu" not in resources["limits"], "no CPU limit: a cold compile is a burst, throttling it delays a push"
    assert _mebibytes(resources["limits"]["memory"]) >= _mebibytes(resources["requests"]["memory"])


def _mebibytes(quantity: str) -> int:
    """A memory quantity in the units deploy/ writes (Mi, Gi)."""
    number, unit = quantity[:-2], quantity[-2:]
    return int(number) * {"Mi": 1, "Gi": 1024}[unit]
