"""The injection webhook: a real AdmissionReview v1 (as kube-apiserver sends it for a ReplicaSet's pod) in, a
JSONPatch out that makes the pod what `meshward inject` makes it; over real HTTPS from `serve --inject-webhook`,
with the mesh CA's certificate or given files."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import ssl
from pathlib import Path
from typing import Any

import manifests
import pytest
from serve_harness import ServeHarness
from tls_certs import TestCA

from reconciler import serve
from reconciler.identity import ca
from reconciler.inject import admission, sidecar

REVIEW = json.loads((Path(__file__).parent / "admission_review.json").read_text())


def apply(doc: Any, patch: list[dict[str, Any]]) -> Any:
    """RFC 6902 `add`, the only operation the webhook sends (to a member or `-`, the end of an array)."""
    doc = copy.deepcopy(doc)
    for op in patch:
        assert op["op"] == "add"
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target.insert(len(target) if last == "-" else int(last), op["value"])
        else:
            assert last not in target, f"add would replace {op['path']}"
            target[last] = op["value"]
    return doc


def patched(answer: dict[str, Any], pod: dict[str, Any]) -> Any:
    response = answer["response"]
    assert response["patchType"] == "JSONPatch"
    return apply(pod, json.loads(base64.b64decode(response["patch"])))


def with_pod(change: Any) -> bytes:
    review = copy.deepcopy(REVIEW)
    change(review["request"]["object"])
    return json.dumps(review).encode()


def test_the_patch_makes_the_pod_what_inject_makes_it() -> None:
    options = sidecar.Options(xds_address="meshward.mesh.svc:15010")
    answer = admission.review(json.dumps(REVIEW).encode(), options)
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == REVIEW["request"]["uid"] and answer["response"]["allowed"] is True
    pod = REVIEW["request"]["object"]
    expected = copy.deepcopy(pod)
    assert sidecar.inject(expected, options) is sidecar.Decision.INJECTED
    assert patched(answer, pod) == expected


@pytest.mark.parametrize("annotations", [None, {"team": "web"}])
def test_the_pod_gets_istios_scrape_annotations_and_its_deployments_workload_label(
        annotations: dict[str, str] | None) -> None:
    """The annotations are added to what the pod has (a JSON Pointer escapes the `/` of their keys); the stats'
    `source_workload` is the Deployment's name, from the ReplicaSet that owns the pod."""
    def change(pod: dict[str, Any]) -> None:
        if annotations is not None:
            pod["metadata"]["annotations"] = dict(annotations)
    body = with_pod(change)
    pod = patched(admission.review(body, sidecar.Options()), json.loads(body)["request"]["object"])
    assert pod["metadata"]["annotations"] == {**(annotations or {}), "prometheus.io/scrape": "true",
                                              "prometheus.io/port": "15090", "prometheus.io/path": "/stats/prometheus"}
    proxy = next(c for c in pod["spec"]["containers"] if c["name"] == sidecar.PROXY)
    config = json.loads(proxy["args"][proxy["args"].index("--config-yaml") + 1])
    tags = {t["tag_name"]: t.get("fixed_value") for t in config["stats_config"]["stats_tags"]}
    assert tags["source_workload"] == "web"


def test_a_pod_without_volumes_gets_the_volumes_array() -> None:
    body = with_pod(lambda pod: [pod["spec"].pop("volumes"), pod["spec"]["containers"][0].pop("volumeMounts")])
    pod = json.loads(body)["request"]["object"]
    expected = copy.deepcopy(pod)
    sidecar.inject(expected, sidecar.Options())
    assert patched(admission.review(body, sidecar.Options()), pod) == expected


@pytest.mark.parametrize("change", [
    lambda pod: pod["metadata"]["labels"].update({"sidecar.istio.io/inject": "false"}),
    lambda pod: pod["metadata"].update({"annotations": {"sidecar.istio.io/inject": "false"}}),
    lambda pod: pod["spec"]["containers"].append({"name": "istio-proxy", "image": "envoy"}),
], ids=["label", "annotation", "already-injected"])
def test_opted_out_and_injected_pods_are_allowed_unchanged(change: Any) -> None:
    answer = admission.review(with_pod(change), sidecar.Options())
    assert answer["response"] == {"uid": REVIEW["request"]["uid"], "allowed": True}


@pytest.mark.parametrize("request_change", [
    {"operation": "UPDATE"}, {"object": ["not", "a", "pod"]}, {"object": {"kind": "Pod", "metadata": None}},
    {"object": {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "web"}}},
], ids=["update", "not-an-object", "no-metadata", "no-containers"])
def test_what_injection_does_not_apply_to_is_allowed_unchanged(request_change: dict[str, Any]) -> None:
    review = copy.deepcopy(REVIEW)
    review["request"].update(request_change)
    answer = admission.review(json.dumps(review).encode(), sidecar.Options())
    assert answer["response"] == {"uid": REVIEW["request"]["uid"], "allowed": True}


@pytest.mark.parametrize("body", [b"{", b"[]", json.dumps({**REVIEW, "apiVersion": "admission.k8s.io/v1beta1"}).encode(),
                                  json.dumps({**REVIEW, "request": {"object": {}}}).encode(),
                                  b"[" * 100_000 + b"]" * 100_000],
                         ids=["not-json", "not-a-review", "v1beta1", "no-uid", "nested-too-deeply"])
def test_what_is_not_a_v1_review_is_refused(body: bytes) -> None:
    with pytest.raises(admission.BadReview):
        admission.review(body, sidecar.Options())


def _post(port: int, context: ssl.SSLContext, body: bytes, path: str = "/inject") -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _serve(tmp_path: Path, **webhook: Any) -> ServeHarness:
    from reconciler.ops import demo

    repo, _ = demo.make_repo(tmp_path / "repo")
    config = serve.ServeConfig(repo=str(repo), path="policies", poll_interval=3600, xds_address="127.0.0.1:0",
                               admin_address="127.0.0.1:0", inject_webhook=True, inject_address="127.0.0.1:0",
                               **webhook)
    return ServeHarness(config, tmp_path / "serve")


def test_serve_answers_reviews_over_https_with_the_mesh_cas_certificate(tmp_path: Path) -> None:
    ca_dir = tmp_path / "cacerts"
    ca.load_or_create(ca_dir)
    harness = _serve(tmp_path, ca_dir=ca_dir, ca_address="127.0.0.1:0")
    try:
        assert harness.server.injector is not None
        port = harness.server.injector.port
        context = ssl.create_default_context(cafile=str(ca_dir / "root-cert.pem"))  # the caBundle
        status, body = _post(port, context, json.dumps(REVIEW).encode())
        assert status == 200
        answer = json.loads(body)
        assert patched(answer, REVIEW["request"]["object"]) == patched(
            admission.review(json.dumps(REVIEW).encode(), sidecar.Options()), REVIEW["request"]["object"])
        assert _post(port, context, b"{")[0] == 400
        assert _post(port, context, b"{}", path="/other")[0] == 404
    finally:
        harness.close()


def test_serve_uses_the_given_certificate_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = TestCA()
    leaf = issuer.issue("127.0.0.1")
    (tmp_path / "tls.crt").write_bytes(leaf.cert_pem)
    (tmp_path / "tls.key").write_bytes(leaf.key_pem)
    harness = _serve(tmp_path, inject_cert=tmp_path / "tls.crt", inject_key=tmp_path / "tls.key")
    try:
        assert harness.server.injector is not None
        context = ssl.create_default_context(cadata=issuer.cert_pem.decode())
        status, _ = _post(harness.server.injector.port, context, json.dumps(REVIEW).encode())
        assert status == 200

        def bug(*_: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(admission, "review", bug)
        status, body = _post(harness.server.injector.port, context, json.dumps(REVIEW).encode())
        assert (status, body) == (500, b"internal error\n"), "a bug is an answer, not a dropped connection"
    finally:
        harness.close()


def test_webhook_configuration_calls_the_service_for_labelled_namespaces() -> None:
    webhook = manifests.one("MutatingWebhookConfiguration")["webhooks"][0]
    service = manifests.one("Service")
    called = webhook["clientConfig"]["service"]
    assert (called["name"], called["namespace"]) == (service["metadata"]["name"], service["metadata"]["namespace"])
    assert called["path"] == "/inject"
    target = next(p for p in service["spec"]["ports"] if p["port"] == called["port"])["targetPort"]
    address = manifests.flag(manifests.serve_args(), "--inject-webhook-address") or ""
    assert next(p for p in manifests.container()["ports"] if p["name"] == target)["containerPort"] == int(
        address.rpartition(":")[2])
    assert "--inject-webhook" in manifests.serve_args()
    assert webhook["namespaceSelector"] == {"matchLabels": {"istio-injection": "enabled"}}
    assert webhook["admissionReviewVersions"] == ["v1"] and webhook["sideEffects"] == "None"
    assert webhook["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                 "resources": ["pods"]}]
    dns = {a.partition("=")[2] for a in manifests.serve_args() if a.startswith("--ca-dns-name=")}
    assert f"{called['name']}.{called['namespace']}.svc" in dns, "the certificate names the Service"
