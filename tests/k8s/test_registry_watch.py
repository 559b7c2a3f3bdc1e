"""The Kubernetes registry against a fake apiserver over real HTTP: list, watch, 410, reconnect, bookmarks, stop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_apiserver import FakeApiServer

from reconciler.kube import registry as reg

FAST_BACKOFF = reg.Backoff(initial=0.05, maximum=0.3)


def service(name: str, ns: str = "shop", port: int = 9080, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"ports": [{"name": "http", "port": port, "targetPort": port}], "selector": {"app": name}},
            **extra}


def slice_(name: str, svc: str, ips: list[str], ns: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
            "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}]}


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def names(r: reg.Registry, kind: str = "Service") -> set[str]:
    return {d["metadata"]["name"] for d in r.documents() if d["kind"] == kind}


def status(r: reg.Registry, kind: str) -> reg.KindStatus:
    return next(s for s in r.status() if s.kind == kind)


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith(("registry-", "fake-apiserver"))]
    assert not leaked


@pytest.fixture
def server(apiserver: FakeApiServer) -> FakeApiServer:
    return apiserver


class Recorder:
    """The on_change callback: records generations, thread-safe."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, generation: int) -> None:
        with self._lock:
            self.calls.append(generation)

    def count(self) -> int:
        with self._lock:
            return len(self.calls)


@pytest.fixture
def start() -> Iterator[Callable[..., tuple[reg.Registry, Recorder]]]:
    started: list[reg.Registry] = []

    def _start(srv: FakeApiServer, **overrides: Any) -> tuple[reg.Registry, Recorder]:
        options: dict[str, Any] = {"host": srv.url, "watch_timeout": 2, "backoff": FAST_BACKOFF,
                                   "debounce": 0.05, "debounce_max": 0.5, **overrides}
        recorder = Recorder()
        r = reg.Registry(reg.RegistryConfig(**options), on_change=recorder)
        r.start()
        started.append(r)
        assert r.wait_synced(5), r.status()
        return r, recorder

    yield _start
    for r in started:
        assert r.stop(timeout=5)


def test_initial_list_populates_the_store(server: FakeApiServer, start: Any) -> None:
    server.apply(service("reviews"))
    server.apply(service("ratings"))
    server.apply(slice_("reviews-abc", "reviews", ["10.0.0.1", "10.0.0.2"]))
    r, rec = start(server)
    assert [(d["kind"], d["metadata"]["name"]) for d in r.documents()] == [
        ("EndpointSlice", "reviews-abc"), ("Service", "ratings"), ("Service", "reviews")]
    assert r.wait_changed(0, timeout=5) >= 1 and rec.count() >= 1  # the first complete view is announced
    assert len(server.requests("Service", watch=False)) == 1
    assert server.wait_for_requests("Service", 1, watch=True)
    watch = server.requests("Service", watch=True)[0]
    assert watch.query["resourceVersion"] == str(103)  # the list's resourceVersion, not "0" or absent
    assert watch.query["allowWatchBookmarks"] == "true" and watch.query["timeoutSeconds"] == "2"


def test_watch_events_update_the_store_and_notify(server: FakeApiServer, start: Any) -> None:
    server.apply(service("reviews"))
    r, rec = start(server)
    gen = r.wait_changed(0, timeout=5)

    server.apply(service("ratings"))
    gen = r.wait_changed(gen, timeout=5)
    assert names(r) == {"reviews", "ratings"}

    server.apply(service("ratings", port=8080))
    gen = r.wait_changed(gen, timeout=5)
    ratings = next(d for d in r.documents() if d["metadata"]["name"] == "ratings")
    assert ratings["spec"]["ports"][0]["port"] == 8080

    server.delete("Service", "shop", "reviews")
    gen = r.wait_changed(gen, timeout=5)
    assert names(r) == {"ratings"}
    assert rec.count() >= 4  # the initial view and each of the three edits were announced
    assert len(server.requests("Service", watch=False)) == 1  # all of it came over the watch


def test_status_only_changes_do_not_notify(server: FakeApiServer, start: Any) -> None:
    server.apply(service("gw"))
    r, _ = start(server)
    gen = r.wait_changed(0, timeout=5)
    rv = server.apply(service("gw", status={"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}))
    assert eventually(lambda: status(r, "Service").resource_version == str(rv))
    assert r.wait_changed(gen, timeout=0.5) == gen  # the manifest did not change: no recompile


def test_bursts_are_debounced(server: FakeApiServer, start: Any) -> None:
    """Changes spaced well inside the quiet time are one announcement (a few under load). Spaced, not sent at once:
    events that arrive together are coalesced even without a debounce, since the watcher marks them all before the
    notifier thread runs; 50 ms apart, an undebounced notifier announces nearly each of them."""
    r, rec = start(server, debounce=0.4, debounce_max=10.0)
    gen = r.wait_changed(0, timeout=5)
    calls = rec.count()
    for i in range(12):
        server.apply(slice_(f"reviews-{i}", "reviews", [f"10.0.1.{i}"]))
        time.sleep(0.05)
    r.wait_changed(gen, timeout=5)
    assert eventually(lambda: len(names(r, "EndpointSlice")) == 12)
    time.sleep(0.8)  # let a trailing announcement (if any) happen before counting
    assert 1 <= rec.count() - calls <= 3


def test_410_error_event_relists_and_converges(server: FakeApiServer, start: Any) -> None:
    server.apply(service("reviews"))
    server.apply(service("ratings"))
    r, _ = start(server)
    gen = r.wait_changed(0, timeout=5)
    # Changes whose events the watcher never sees, then the watch expires under it.
    server.apply(service("details"), silent=True)
    server.delete("Service", "shop", "ratings", silent=True)
    assert r.wait_changed(gen, timeout=0.3) == gen and names(r) == {"reviews", "ratings"}
    server.compact(expire_live=True)
    assert eventually(lambda: names(r) == {"reviews", "details"})
    assert r.wait_changed(gen, timeout=5) > gen
    assert len(server.requests("Service", watch=False)) == 2
    assert len(server.requests("EndpointSlice", watch=False)) == 2  # its watch expired too


def test_410_http_status_relists_without_spinning(server: FakeApiServer, start: Any) -> None:
    r, _ = start(server, backoff=reg.Backoff(initial=0.2, maximum=1.0))
    server.fail_requests("Service", 410, watch_only=True)
    server.drop_connections()
    assert server.wait_for_requests("Service", 2, watch=False)  # 410: re-listed
    time.sleep(1.0)
    assert len(server.requests("Service", watch=False)) <= 6  # then re-lists back off while 410 persists
    server.fail_requests("Service", None)
    server.apply(service("late"))
    assert eventually(lambda: names(r) == {"late"})


def test_server_restart_reconnects_and_resumes_without_relist(server: FakeApiServer, start: Any) -> None:
    server.apply(service("reviews"))
    r, _ = start(server)
    gen = r.wait_changed(0, timeout=5)
    server.stop()
    server.apply(service("ratings"))  # happens while the watcher cannot connect
    time.sleep(0.5)  # several refused reconnects
    server.start()
    assert eventually(lambda: names(r) == {"reviews", "ratings"})
    assert r.wait_changed(gen, timeout=5) > gen
    assert len(server.requests("Service", watch=False)) == 1  # resumed from its resourceVersion
    assert status(r, "Service").errors >= 1


def test_server_restart_after_compaction_relists(server: FakeApiServer, start: Any) -> None:
    server.apply(service("reviews"))
    server.apply(slice_("reviews-1", "reviews", ["10.0.0.1"]))
    r, _ = start(server)
    server.stop()
    server.delete("Service", "shop", "reviews")
    server.apply(slice_("reviews-1", "reviews", ["10.0.0.9"]))
    server.compact()
    server.start()
    assert eventually(lambda: names(r) == set() and "10.0.0.9" in str(r.documents()))
    assert len(server.requests("Service", watch=False)) == 2


def test_bookmark_moves_the_resource_version(server: FakeApiServer, start: Any) -> None:
    server.apply(service("reviews"))
    r, _ = start(server)
    assert server.wait_for_requests("Service", 1, watch=True)
    server.bump(50)  # other kinds changed: our resourceVersion falls behind
    rv = 0

    def bookmark_seen() -> bool:
        nonlocal rv
        rv = server.bookmark("Service")
        return eventually(lambda: status(r, "Service").resource_version == str(rv), timeout=1.0)

    # On a loaded machine the watch may not be streaming yet when a bookmark goes out: send until one lands.
    assert eventually(bookmark_seen, timeout=15.0)
    # History before the bookmark is compacted; the reconnect starts at the bookmark, so no 410 and no re-list.
    server.compact()
    server.drop_connections()
    assert server.wait_for_requests("Service", 2, watch=True)
    assert server.requests("Service", watch=True)[-1].query["resourceVersion"] == str(rv)
    server.apply(service("ratings"))
    assert eventually(lambda: names(r) == {"reviews", "ratings"})
    assert len(server.requests("Service", watch=False)) == 1


def test_server_errors_back_off_and_recover(server: FakeApiServer, start: Any) -> None:
    r, _ = start(server)
    server.fail_requests("Service", 500)
    server.drop_connections()
    assert eventually(lambda: len(server.requests("Service")) >= 2)  # retried
    time.sleep(1.0)
    assert len(server.requests("Service")) < 15  # but with backoff (a hot loop makes hundreds)
    assert "500" in status(r, "Service").last_error
    server.fail_requests("Service", None)
    server.apply(service("back"))
    assert eventually(lambda: names(r) == {"back"})


def test_documents_have_manifest_shape(server: FakeApiServer, start: Any) -> None:
    svc = service("reviews", status={"loadBalancer": {}})
    svc["metadata"]["annotations"] = {"team": "books", "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    svc["metadata"].update(uid="u-1", creationTimestamp="2024-05-01T00:00:00Z", generation=3)
    svc["spec"]["ports"][0]["targetPort"] = "http-web"  # int-or-string stays a string
    server.apply(svc)
    eps = slice_("reviews-abc", "reviews", ["10.0.0.1"])
    eps["endpoints"][0].update(targetRef={"kind": "Pod", "name": "reviews-v1-x", "namespace": "shop"},
                               nodeName="n1", zone="z1")
    server.apply(eps)
    r, _ = start(server)
    server.apply({**slice_("empty", "ratings", []), "endpoints": None})  # the API's null for "no endpoints"
    assert eventually(lambda: len(r.documents()) == 3)
    docs = {reg.source_name(d): d for d in r.documents()}
    assert docs["k8s:Service/shop/reviews"] == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "reviews", "namespace": "shop", "labels": {"app": "reviews"},
                     "annotations": {"team": "books"}},
        "spec": {"ports": [{"name": "http", "port": 9080, "targetPort": "http-web"}],
                 "selector": {"app": "reviews"}}}
    assert docs["k8s:EndpointSlice/shop/reviews-abc"] == {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "reviews-abc", "namespace": "shop", "labels": {"kubernetes.io/service-name": "reviews"}},
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "nodeName": "n1", "zone": "z1",
                       "targetRef": {"kind": "Pod", "name": "reviews-v1-x", "namespace": "shop"}}],
        "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}]}
    assert docs["k8s:EndpointSlice/shop/empty"]["endpoints"] == []  # came over the watch, not the list
    assert [name for name, _ in r.named_documents()] == [reg.source_name(d) for d in r.documents()]
    r.documents()[0]["metadata"]["name"] = "mutated"  # copies: the caller cannot corrupt the store
    assert "mutated" not in str(r.documents())


def test_stop_ends_every_thread_promptly(server: FakeApiServer) -> None:
    r = reg.Registry(reg.RegistryConfig(host=server.url, watch_timeout=60, backoff=FAST_BACKOFF))
    r.start()
    assert r.wait_synced(5)
    assert server.wait_for_requests("EndpointSlice", 1, watch=True)
    time.sleep(0.2)  # both watches idle in a blocking read
    assert r.stop(timeout=20)  # ended, not waited out: the blocking read would last the 60 s watch timeout


def test_stop_while_server_is_down(server: FakeApiServer) -> None:
    r = reg.Registry(reg.RegistryConfig(host=server.url, watch_timeout=60, backoff=reg.Backoff(60.0, 120.0)))
    r.start()
    assert r.wait_synced(5)
    server.stop()
    time.sleep(0.3)  # watchers are in their backoff sleep
    assert r.stop(timeout=20)  # ended, not waited out: the backoff sleep lasts at least 30 s (equal jitter)


def test_kubeconfig_file(server: FakeApiServer, start: Any, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{server.url}"}}}}]
users: [{{name: dev, user: {{token: not-checked}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: dev}}}}]
current-context: fake
""")
    server.apply(service("reviews"))
    r, _ = start(server, host=None, kubeconfig=kubeconfig)
    assert names(r) == {"reviews"}


def test_istio_custom_objects_and_missing_crds(server: FakeApiServer, start: Any) -> None:
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
          "metadata": {"name": "reviews", "namespace": "shop"},
          "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}}
    server.apply(vs)
    kinds = (reg.SERVICES, reg.istio_kind("VirtualService", "virtualservices"),
             reg.istio_kind("Gateway", "gateways"))  # not served by this apiserver: 404, treated as empty
    r, _ = start(server, kinds=kinds)
    assert r.documents() == [vs]
    vs2 = {**vs, "spec": {"hosts": ["reviews"], "http": []}}
    server.apply(vs2)
    assert eventually(lambda: r.documents() == [vs2])
    assert status(r, "Gateway").synced and status(r, "Gateway").objects == 0


def test_asyncio_notifier_wakes_a_loop(server: FakeApiServer) -> None:
    async def main() -> list[str]:
        event = asyncio.Event()
        config = reg.RegistryConfig(host=server.url, watch_timeout=2, backoff=FAST_BACKOFF, debounce=0.05)
        with reg.Registry(config, on_change=reg.asyncio_notifier(asyncio.get_running_loop(), event)) as r:
            await asyncio.wait_for(event.wait(), timeout=5)  # the initial sync
            event.clear()
            server.apply(service("reviews"))
            await asyncio.wait_for(event.wait(), timeout=5)
            return sorted(names(r))

    assert asyncio.run(main()) == ["reviews"]


def test_backoff_is_bounded_and_jittered() -> None:
    import random

    backoff = reg.Backoff(initial=0.5, maximum=8.0)
    rng = random.Random(7)
    delays = [backoff.delay(attempt, rng) for attempt in range(200)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert 0.25 <= delays[0] <= 0.5 and max(delays[10:]) > 4.0
    assert len({round(d, 6) for d in delays[10:]}) > 100  # jitter: reconnects do not stampede in lockstep


def test_documents_pass_the_compilers_typed_stage(server: FakeApiServer, start: Any) -> None:
    """What a real cluster returns (defaulted fields, status, managed metadata) is a valid compiler document."""
    from compiler import typed
    from compiler.load import Document

    svc = service("reviews", status={"loadBalancer": {}})
    svc["metadata"].update(uid="0b9c", creationTimestamp="2024-05-01T00:00:00Z",
                           managedFields=[{"manager": "kubectl", "operation": "Update"}])
    svc["spec"].update(type="ClusterIP", clusterIP="10.96.0.12", clusterIPs=["10.96.0.12"], ipFamilies=["IPv4"],
                       ipFamilyPolicy="SingleStack", sessionAffinity="None", internalTrafficPolicy="Cluster")
    server.apply(svc)
    eps = slice_("reviews-x1", "reviews", ["10.244.0.7"])
    eps["endpoints"][0]["conditions"] = {"ready": True, "serving": True, "terminating": False}
    server.apply(eps)
    r, _ = start(server)
    server.apply({**slice_("ratings-x1", "ratings", []), "endpoints": None})
    assert eventually(lambda: len(r.documents()) == 3)
    documents = [Document(file=name, index=0, line=1, data=doc) for name, doc in r.named_documents()]
    resources, problems = typed.to_resources(documents)
    assert problems == []
    assert sorted(res.origin for res in resources) == [
        "EndpointSlice shop/ratings-x1", "EndpointSlice shop/reviews-x1", "Service shop/reviews"]


def test_a_failing_callback_does_not_stop_the_registry(server: FakeApiServer) -> None:
    seen: list[int] = []

    def flaky(generation: int) -> None:
        seen.append(generation)
        raise RuntimeError("subscriber bug")

    config = reg.RegistryConfig(host=server.url, watch_timeout=2, backoff=FAST_BACKOFF, debounce=0.05)
    with reg.Registry(config, on_change=flaky) as r:
        gen = r.wait_changed(0, timeout=5)
        server.apply(service("reviews"))
        assert r.wait_changed(gen, timeout=5) > gen
        assert names(r) == {"reviews"} and len(seen) >= 2
