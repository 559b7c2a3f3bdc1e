"""The Deployment's `meshward serve`, really started with its flags (deployed_serve.py): it opens exactly the
ports the manifests declare, and asks the API server for exactly what the ClusterRole grants (the watches at
start, the TokenReview when a pod's agent asks the CA for its certificate)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import deployed_serve
import jwt
import manifests
import pytest
from fake_apiserver import FakeApiServer

from reconciler.identity import ca_client, certs
from reconciler.identity.spiffe import Identity
from reconciler.ops import demo


@dataclasses.dataclass(frozen=True)
class Served:
    proc: subprocess.Popen[str]
    apiserver: FakeApiServer
    ports: dict[int, int]  # the Deployment's container port -> its loopback stand-in
    ca_dir: Path
    ca_files: dict[str, int]  # name -> mtime_ns before serve started


def _files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("deployed")
    apiserver = FakeApiServer()
    apiserver.start()
    try:
        args = manifests.serve_args()
        ports = deployed_serve.free_ports([p["containerPort"] for p in manifests.container()["ports"]])
        ca_dir = deployed_serve.complete_ca_dir(tmp / "cacerts")
        _, work = demo.make_repo(tmp / "repo")
        local = deployed_serve.local_args(args, ports=ports, replace={
            "--repo": str(work), "--kubeconfig": str(deployed_serve.kubeconfig(tmp / "kubeconfig", apiserver.url)),
            "--ca-dir": str(ca_dir)})
        admin = f"127.0.0.1:{ports[int((manifests.flag(args, '--admin-address') or '').rpartition(':')[2])]}"
        (tmp / "tmp").mkdir()
        before = _files(ca_dir)
        with deployed_serve.running(local, tmp=tmp / "tmp", ready_at=admin) as proc:
            yield Served(proc, apiserver, ports, ca_dir, before)
    finally:
        apiserver.stop()


def test_serve_opens_exactly_the_declared_container_ports(served: Served) -> None:
    assert deployed_serve.listening_ports(served.proc.pid) == set(served.ports.values())


def test_serve_only_reads_its_ca_directory(served: Served) -> None:
    """The Secret's volume is read-only: a complete directory is never written to."""
    assert _files(served.ca_dir) == served.ca_files


def _granted() -> set[tuple[str, str, str]]:
    role = manifests.one("ClusterRole")
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def _asked(apiserver: FakeApiServer) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every request the server sent: lists, watches, and the TokenReview (the one
    kind the test API server takes a POST for, a create)."""
    out = set()
    for request in apiserver.all_requests():
        parts = request.path.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        verb = "create" if parts[-1] == "tokenreviews" else "watch" if request.watch else "list"
        out.add((group, parts[-1], verb))
    return out


def _certificate_for_a_pod(served: Served) -> list[str]:
    """What an injected pod's agent does at start: a CSR for its identity, with its service-account token."""
    token = jwt.encode({"iss": "https://kubernetes.default.svc", "sub": "web"}, "the test cluster's key, 32+ bytes",
                       algorithm="HS256")  # shaped like a kubelet's; only the (test) API server judges it
    served.apiserver.add_token(token, "system:serviceaccount:shop:web")
    ca_port = int((manifests.flag(manifests.serve_args(), "--ca-address") or "").rpartition(":")[2])
    address = f"127.0.0.1:{served.ports[ca_port]}"
    csr = certs.make_csr(certs.new_key(), Identity("cluster.local", "shop", "web"))

    async def call() -> list[str]:
        channel = ca_client.channel(address, (served.ca_dir / "root-cert.pem").read_bytes())
        try:
            return await ca_client.create_certificate(channel, csr=csr, token=token, validity_seconds=3600)
        finally:
            await channel.close()

    return asyncio.run(call())


def test_serve_asks_the_api_server_for_what_the_cluster_role_grants(served: Served) -> None:
    assert _certificate_for_a_pod(served)
    deadline = time.monotonic() + 20
    while _asked(served.apiserver) != _granted() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _asked(served.apiserver) == _granted()
