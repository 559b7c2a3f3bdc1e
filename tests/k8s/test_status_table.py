"""`meshward status` text for a reconciler that watches a cluster: which commit and cluster state serve, why a
cluster state was refused, refused credentials, failing watches, and proxies kept on their previous snapshot."""

from __future__ import annotations

from reconciler.ops import status_table

GATEWAY = "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local"
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


REFUSED = "secret istio-system/cert: the private key does not belong to the first certificate of the chain"


def test_cluster_summary_and_kept_back_proxy() -> None:
    status = {
        "serving": {"sha": "a" * 40}, "servingClusterGeneration": 4, "lastResult": "ValidationFailed",
        "errors": ["k8s:Service/shop/web:1:1: error MW0325: port 8080 is not a port of web"],
        "cluster": {"generation": 5, "synced": True, "problems": [REFUSED],
                    "watches": [{"kind": "Service", "errors": 0, "lastError": ""},
                                {"kind": "Secret", "errors": 3, "lastError": "ApiException: (403) Forbidden"}]},
        "proxyErrors": [{"node": GATEWAY, "error": "InconsistentSnapshot: secret cert\nis missing"}],
    }
    proxies = [{"node_id": GATEWAY, "mode": "delta", "state": "SYNCED", "commit": "a" * 40, "cluster_generation": 4,
                "types": {CDS: {"state": "SYNCED", "acked_version": "0123456789abcdef", "last_nack": None}}}]
    lines = status_table.render(status, proxies).splitlines()
    assert lines[:6] == [
        f"serving commit {'a' * 12} with cluster state 4  last result ValidationFailed",
        "  k8s:Service/shop/web:1:1: error MW0325: port 8080 is not a port of web",
        "cluster state 5 (synced)",
        f"  credential refused: {REFUSED}",
        "  Secret watch: 3 errors, last: ApiException: (403) Forbidden",
        "NAME" + " " * (len(GATEWAY) - 2) + "MODE   STATE   COMMIT        GEN  CDS              LDS  EDS  RDS  SDS  MESSAGE",
    ]
    assert lines[6].split("  ")[0] == GATEWAY
    assert lines[6].endswith("kept on its previous snapshot: InconsistentSnapshot: secret cert is missing")
    assert f"{'a' * 12}  4    SYNCED 01234567  -    -    -    -" in lines[6]
