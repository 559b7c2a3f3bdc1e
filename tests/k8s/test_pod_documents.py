"""What of a cluster's Pods and EndpointSlices reaches the compiler: a Pod trimmed to what the mesh reads (so that
restart counts or probe times are no change at all), and readiness split off, so that two states differing only in
readiness are the same documents to compile."""

from __future__ import annotations

from pods_tree import pod, web_slice

from compiler import build, model, readiness
from compiler.build import Document
from reconciler.kube.registry_store import manifest


def _docs(*objs: dict) -> list[Document]:  # type: ignore[type-arg]
    return [Document(file=f"k8s:{o['kind']}/{o['metadata']['name']}", index=0, line=1,
                     data=manifest(o["kind"], o["apiVersion"], o)) for o in objs]


def test_a_pod_keeps_what_the_mesh_reads() -> None:
    got = manifest("Pod", "v1", pod("web-a", "127.0.0.2", ready=True))
    assert got["spec"] == {"serviceAccountName": "web", "containers": [{"name": "web", "ports": [{"containerPort": 8080}]}]}
    assert got["status"] == {"phase": "Running", "podIP": "127.0.0.2", "podIPs": [{"ip": "127.0.0.2"}],
                             "conditions": [{"type": "Ready", "status": "True"}]}
    noisy = pod("web-a", "127.0.0.2", ready=True)
    noisy["status"]["containerStatuses"] = [{"restartCount": 7}]
    noisy["spec"]["containers"][0]["image"] = "example/web:2"
    assert manifest("Pod", "v1", noisy) == got


def test_readiness_is_split_off_so_only_it_differs() -> None:
    ready_docs, ready = build.split_readiness(_docs(pod("web-a", "127.0.0.2", ready=True),
                                                    pod("web-b", "127.0.0.3", ready=True),
                                                    web_slice({"web-a": True, "web-b": True})))
    docs, unready = build.split_readiness(_docs(pod("web-a", "127.0.0.2", ready=True),
                                                pod("web-b", "127.0.0.3", ready=False),
                                                web_slice({"web-a": True, "web-b": False})))
    assert ready == frozenset() and unready == {"127.0.0.3"}
    assert docs == ready_docs  # what is compiled is the same
    slice_only, unready = build.split_readiness(_docs(web_slice({"web-a": False, "web-b": True})))
    assert unready == {"127.0.0.2"} and all("conditions" not in ep for ep in slice_only[0].data["endpoints"])
    pending = pod("web-c", "127.0.0.4", ready=True)
    pending["status"]["phase"] = "Succeeded"
    assert build.split_readiness(_docs(pending))[1] == {"127.0.0.4"}


def test_unready_endpoints_are_left_out_of_the_snapshot_only() -> None:
    cfg = model.ProxyConfig(proxy=model.Proxy("sidecar~1.1.1.1~a.ns~ns.svc.cluster.local", model.ProxyKind.SIDECAR,
                                              "1.1.1.1", "a", "ns", ()),
                            load_assignments=(model.LoadAssignment("c", (model.Endpoint("10.0.0.1", 80),
                                                                         model.Endpoint("10.0.0.2", 80))),))
    assert readiness.without_unready(cfg, frozenset()) is cfg
    assert readiness.without_unready(cfg, frozenset({"10.9.9.9"})) is cfg
    kept = readiness.without_unready(cfg, frozenset({"10.0.0.2"}))
    assert [e.address for e in kept.load_assignments[0].endpoints] == ["10.0.0.1"]
