"""Model values are memo keys, alone and in tuples (a proxy's cluster table is looked up by value). Some hash a few
identifying fields only; equality still compares everything, and what proxies' tables differ by must stay in the
hash, or thousands of proxies' tables would share one hash bucket."""

from __future__ import annotations

from compiler import model


def _inbound(source: model.Source, port: int = 8080) -> model.Cluster:
    return model.Cluster(name="inbound|8080||", discovery=model.Discovery.STATIC,
                         endpoints=(model.Endpoint("127.0.0.1", port),), sources=(source,))


def test_equal_values_hash_equal_and_unequal_ones_stay_unequal() -> None:
    a = model.Source("Service", "ns", "a", "a.yaml", 1)
    assert hash(_inbound(a)) == hash(_inbound(a)) and _inbound(a) == _inbound(a)
    assert _inbound(a) != _inbound(a, port=9090)  # same name and sources: same hash, still unequal


def test_inbound_clusters_of_different_workloads_hash_apart() -> None:
    clusters = {hash(_inbound(model.Source("Service", "ns", f"svc{i}", f"svc{i}.yaml", 1))) for i in range(100)}
    assert len(clusters) == 100
