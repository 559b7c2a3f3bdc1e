"""Conformance with Istio's own analyzer tests (the corpus in ../shared/corpus/istio-analyzers, beside the project).

Each Git-only case of Istio's `analyzers_test.go` runs through our loader, typed stage and analyzers, with the
dummy ingress gateway the Istio harness adds, and must report the same multiset of (IST code, resource) as Istio,
counting only the diagnostics of our codes that correspond to the case's Istio analyzer. Where we deliberately
differ, `DIFFERENCES` lists the exact pairs and why; analyzers of kinds we do not model are listed in `NOT_MODELED`.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from compiler import codes, load, typed
from compiler.analyze import analyze
from compiler.resources import ResourceSet

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus" / "istio-analyzers"
SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}
Pair = tuple[str, str]  # (IST code, resource origin)

# The Istio harness's dummy ingress gateway (see the corpus README).
DUMMY_INGRESS = """\
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway-dummypod
  namespace: istio-system
  labels:
    istio: ingressgateway
spec:
  containers:
  - name: istio-proxy
---
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  ports:
  - {name: http2, port: 80, targetPort: 80, protocol: TCP}
  - {name: https, port: 443, targetPort: 443, protocol: TCP}
  - {name: tcp, port: 31400, targetPort: 31400, protocol: TCP}
  - {name: tls, port: 15443, targetPort: 15443, protocol: TCP}
"""

# Istio analyzer -> the meshward codes that implement it.
ANALYZER_CODES: Mapping[str, frozenset[str]] = {
    "authz.AuthorizationPoliciesAnalyzer": frozenset({"MW0304", "MW0326"}),
    "deprecation.FieldAnalyzer": frozenset({"MW0323"}),
    "destinationrule.CaCertificateAnalyzer": frozenset({"MW0309", "MW0310"}),
    "destinationrule.PodNotSelectedAnalyzer": frozenset({"MW0317", "MW0318"}),
    "gateway.CertificateAnalyzer": frozenset({"MW0314"}),
    "gateway.ConflictingGatewayAnalyzer": frozenset({"MW0316"}),
    "schemaValidation.CollectionValidationAnalyzer(collections.VirtualService)": frozenset({"MW0311", "MW0312"}),
    "service.PortNameAnalyzer": frozenset({"MW0308", "MW0322"}),
    "serviceentry.ConflictingServiceEntryProtocolAnalyzer": frozenset({"MW0319"}),
    "serviceentry.ProtocolAddressesAnalyzer": frozenset({"MW0321"}),
    "sidecar.SelectorAnalyzer": frozenset({"MW0306"}),
    "telemetry.DefaultSelectorAnalyzer": frozenset({"MW0331"}),
    "telemetry.LightstepAnalyzer": frozenset({"MW0323"}),
    "telemetry.ProviderAnalyzer": frozenset({"MW0334"}),
    "telemetry.SelectorAnalyzer": frozenset({"MW0332", "MW0333"}),
    "virtualservice.ConflictingMeshGatewayHostsAnalyzer": frozenset({"MW0305"}),
    "virtualservice.DestinationHostAnalyzer": frozenset({"MW0302", "MW0307", "MW0315", "MW0325"}),
    "virtualservice.DestinationRuleAnalyzer": frozenset({"MW0303"}),
    "virtualservice.GatewayAnalyzer": frozenset({"MW0301", "MW0313", "MW0324"}),
    "virtualservice.JWTClaimRouteAnalyzer": frozenset({"MW0327"}),
}

# Istio analyzers we do not implement, and why.
NOT_MODELED: Mapping[str, str] = {
    "authn.BlockedCIDRsAnalyzer": "reads the istiod Deployment's environment, which meshward does not read",
    "deployment.ApplicationUIDAnalyzer": "reads container security contexts, which meshward does not read",
    "deployment.ServiceAssociationAnalyzer": "not implemented (Deployments are read for their pods' labels, "
                                             "service account and ports only)",
    "envoyfilter.EnvoyPatchAnalyzer": "EnvoyFilter is not modeled",
    "k8sgateway.CRDVersionAnalyzer": "CustomResourceDefinitions are not modeled",
}

# Cases that need a cluster in general, but whose part we implement reads only what a policy tree holds; only
# the IST codes of our codes for that analyzer are compared.
CLUSTER_CASES_WE_RUN: Mapping[str, str] = {
    "TestAnalyzers/authorizationpolicies": "its Pods and Namespaces are in the case's own inputs",
    "TestAnalyzers/certificate_duplication_in_Gateway": "the analyzer reads only Gateways (Pods, Secrets ignored)",
    "TestAnalyzers/virtualServiceJWTClaimRoute": "the gateway's pod is the harness's dummy ingress Pod, which the "
                                                 "case's inputs get here too",
    "TestAnalyzers/sidecarDefaultSelector": "IST0111 needs only Sidecars (the Pod-based messages are not compared)",
    "TestAnalyzers/telemetrySelector": "its Pods are in the case's own inputs",
}


@dataclasses.dataclass(frozen=True)
class Difference:
    reason: str
    missing: tuple[Pair, ...] = ()  # expected by Istio, not reported by us
    extra: tuple[Pair, ...] = ()  # reported by us, not by Istio


DIFFERENCES: Mapping[str, Difference] = {
    "TestAnalyzers/virtualServiceDestinationHosts": Difference(
        "VirtualService reviews-bogushost has a route without destination (`- {}`), which meshward rejects before "
        "analysis (MW0103), so neither of its two destinations is analyzed",
        missing=(("IST0101", "VirtualService default/reviews-bogushost"),
                 ("IST0101", "VirtualService default/reviews-bogushost"))),
    "TestAnalyzers/virtualServiceGateways": Difference(
        "a VirtualService bound to a Gateway that does not exist gets one error (gateway not found), not also "
        "'host not found in gateway'",
        missing=(("IST0132", "VirtualService httpbin-bogus"),)),
    "TestAnalyzers/virtualServiceKubernetesGateways": Difference(
        "Kubernetes Gateway API kinds (gateway.networking.k8s.io Gateway) are not modeled, so the VirtualServices "
        "that bind to one find no gateway",
        missing=(("IST0132", "VirtualService default/my-vs-host-mismatch"),),
        extra=(("IST0101", "VirtualService default/my-vs"),
               ("IST0101", "VirtualService default/my-vs-host-mismatch"))),
}


def _expectations() -> list[dict[str, Any]]:
    path = CORPUS / "expectations.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _runnable(case: Mapping[str, Any]) -> bool:
    if case["analyzer"] not in ANALYZER_CODES:
        return False
    return not case["needs_cluster"] or case["id"] in CLUSTER_CASES_WE_RUN


CASES = [c for c in _expectations() if _runnable(c)]


def _ingress_off(case: Mapping[str, Any]) -> bool:
    return "ingressControllerMode: OFF" in (case.get("mesh_config") or "")


def _mesh_config_map(mesh: str) -> str:
    body = "".join(f"    {line}\n" for line in mesh.splitlines())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: istio, namespace: istio-system}}\ndata:\n  mesh: |\n{body}"


@functools.cache
def _report(case_id: str) -> tuple[collections.Counter[Pair], collections.Counter[Pair]]:
    """(what we report, what Istio expects) for one case, both restricted to the case's analyzer."""
    case = next(c for c in CASES if c["id"] == case_id)
    ours = ANALYZER_CODES[case["analyzer"]]
    loaded = load.load([CORPUS / name for name in case["inputs"]])
    documents = list(loaded.documents)
    if not _ingress_off(case):
        documents += load.load_text(DUMMY_INGRESS, "<istio-harness>").documents
    if case.get("mesh_config"):  # Istio's harness reads it as the mesh config: here, as the istio ConfigMap holds it
        documents += load.load_text(_mesh_config_map((CORPUS / case["mesh_config"]).read_text()),
                                    "<istio-harness>").documents
    resources, _ = typed.to_resources(documents)
    kept = ResourceSet([r for r in resources if r.namespace not in SYSTEM_NAMESPACES])
    got = collections.Counter((codes.get(d.code).istio, d.resource) for d in analyze(kept) if d.code in ours)
    istio_codes = {codes.get(c).istio for c in ours} if case["needs_cluster"] else None
    expected = collections.Counter((e["code"], e["resource"]) for e in case["expected"]
                                   if istio_codes is None or e["code"] in istio_codes)
    return got, expected


def _adjusted(case_id: str, expected: collections.Counter[Pair]) -> collections.Counter[Pair]:
    diff = DIFFERENCES.get(case_id)
    if diff is None:
        return expected
    out = expected.copy()
    out.subtract(collections.Counter(diff.missing))
    out.update(collections.Counter(diff.extra))
    return +out


pytestmark = pytest.mark.skipif(not CASES, reason=f"Istio analyzer corpus not found at {CORPUS}")


@pytest.mark.parametrize("case_id", [c["id"] for c in CASES])
def test_case_matches_istio(case_id: str) -> None:
    got, expected = _report(case_id)
    want = _adjusted(case_id, expected)
    assert got == want, (f"missing: {sorted((want - got).elements())}\n"
                         f"unexpected: {sorted((got - want).elements())}")


@pytest.mark.parametrize("case_id", sorted(DIFFERENCES))
def test_listed_differences_are_real(case_id: str) -> None:
    """A listed difference must still be one: when we start matching Istio, the entry must go."""
    got, expected = _report(case_id)
    assert got != expected, f"{case_id} now matches Istio exactly; remove it from DIFFERENCES"


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    every = _expectations()
    git_only = [c for c in every if not c["needs_cluster"]]
    exact = [c["id"] for c in CASES if _report(c["id"])[0] == _report(c["id"])[1]]
    matched = [c["id"] for c in CASES if _report(c["id"])[0] == _adjusted(c["id"], _report(c["id"])[1])]
    skipped = collections.Counter(NOT_MODELED[c["analyzer"]] for c in git_only if c["analyzer"] in NOT_MODELED)
    unknown = {c["analyzer"] for c in git_only if c["analyzer"] not in ANALYZER_CODES | NOT_MODELED}
    with capsys.disabled():
        print(f"\nIstio analyzer conformance: {len(matched)}/{len(CASES)} cases match ({len(exact)} exactly, "
              f"{len(DIFFERENCES)} with listed differences); {len(git_only)} Git-only cases in the corpus, "
              f"{sum(skipped.values())} of analyzers not modeled: {dict(skipped)}")
    assert not unknown, f"Git-only cases of analyzers neither implemented nor listed in NOT_MODELED: {unknown}"
    assert len(matched) == len(CASES)
