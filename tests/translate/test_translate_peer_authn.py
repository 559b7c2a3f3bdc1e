"""PeerAuthentication -> each inbound port's mTLS mode and chains: Pilot's levels (mesh in the root namespace,
namespace, workload selector, portLevelMtls), UNSET inheriting, the oldest policy of a level winning, and no
policy at all: Istio's PERMISSIVE in a mesh with identities (`serve --ca-dir`), plaintext chains in one without."""

from __future__ import annotations

import pytest
from translate_harness import config_for

from compiler import model

NODE = "sidecar~10.0.0.1~web.app~app.svc.cluster.local"
BASE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: app}
spec: {address: 10.0.0.1, labels: {app: web}}
"""
S, P, D = model.MtlsMode.STRICT, model.MtlsMode.PERMISSIVE, model.MtlsMode.DISABLE


def peer(name: str, namespace: str, body: str, created: str = "2024-01-01T00:00:00Z") -> str:
    return (f"---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, "
            f"namespace: {namespace}, creationTimestamp: '{created}'}}\nspec:\n{body}")


def transports(*policies: str, mesh_identity: bool = False) -> dict[int, list[str]]:
    """Inbound port -> the transport protocol each chain matches ('' for any)."""
    cfg = config_for(BASE + "".join(policies), NODE, mesh_identity=mesh_identity)
    return {lst.port: [c.transport_protocol for c in lst.filter_chains] for lst in cfg.listeners
            if lst.direction is model.TrafficDirection.INBOUND}


STRICT, PERMISSIVE, PLAIN = ["tls"], ["tls", "raw_buffer"], [""]


def test_no_policy_keeps_plaintext_chains() -> None:
    assert transports() == {8080: PLAIN, 9000: PLAIN}


def test_no_policy_in_a_mesh_with_identities_is_istios_permissive() -> None:
    assert transports(mesh_identity=True) == {8080: PERMISSIVE, 9000: PERMISSIVE}
    # a policy still decides where there is one
    assert transports(peer("n", "app", "  mtls: {mode: DISABLE}\n"), mesh_identity=True) == {8080: PLAIN,
                                                                                          9000: PLAIN}


@pytest.mark.parametrize(("policies", "expected"), [
    ([peer("m", "istio-system", "  mtls: {mode: STRICT}\n")], {8080: STRICT, 9000: STRICT}),
    ([peer("m", "istio-system", "  mtls: {mode: UNSET}\n")], {8080: PERMISSIVE, 9000: PERMISSIVE}),
    ([peer("m", "istio-system", "  mtls: {mode: STRICT}\n"), peer("n", "app", "  mtls: {mode: DISABLE}\n")],
     {8080: PLAIN, 9000: PLAIN}),
    ([peer("n", "app", "  mtls: {mode: DISABLE}\n"),
      peer("w", "app", "  selector: {matchLabels: {app: web}}\n  mtls: {mode: STRICT}\n")],
     {8080: STRICT, 9000: STRICT}),
    ([peer("m", "istio-system", "  mtls: {mode: STRICT}\n"),
      peer("w", "app", "  selector: {matchLabels: {app: web}}\n  portLevelMtls:\n    9000: {mode: DISABLE}\n"
                       "    8080: {mode: UNSET}\n")],
     {8080: STRICT, 9000: PLAIN}),
    ([peer("root-selector", "istio-system", "  selector: {matchLabels: {app: web}}\n  mtls: {mode: STRICT}\n")],
     {8080: PLAIN, 9000: PLAIN}),
    ([peer("other", "app", "  selector: {matchLabels: {app: other}}\n  mtls: {mode: STRICT}\n")],
     {8080: PLAIN, 9000: PLAIN}),
    ([peer("newer", "app", "  mtls: {mode: DISABLE}\n", "2025-01-01T00:00:00Z"),
      peer("older", "app", "  mtls: {mode: STRICT}\n", "2023-01-01T00:00:00Z")],
     {8080: STRICT, 9000: STRICT}),
], ids=["mesh-strict", "unset-is-permissive", "namespace-overrides", "workload-overrides",
        "port-level", "root-selector-ignored", "selector-elsewhere", "oldest-wins"])
def test_modes(policies: list[str], expected: dict[int, list[str]]) -> None:
    assert transports(*policies) == expected


def test_strict_http_chain_requires_the_mesh_identity_and_forwards_it() -> None:
    cfg = config_for(BASE + peer("m", "istio-system", "  mtls: {mode: STRICT}\n"), NODE)
    (chain,) = next(lst for lst in cfg.listeners
                    if lst.port == 8080 and lst.direction is model.TrafficDirection.INBOUND).filter_chains
    assert chain.tls == model.DownstreamTls("ISTIO_MUTUAL", credential_secret="default", ca_secret="ROOTCA",
                                            secrets_from=model.SecretSource.AGENT,
                                            san_prefixes=("spiffe://cluster.local/",))
    assert isinstance(chain.filter, model.HttpFilterChain) and chain.filter.forward_client_cert
