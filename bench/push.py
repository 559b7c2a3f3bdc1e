"""Push benchmark (issue #4), shaped like Istio's load test (istio/tools perf/load). Prints figures measured in this
one run; nothing here is asserted by the test suite.

    .venv/bin/python bench/push.py --services 1000 --proxies 2000 --scoped
    .venv/bin/python bench/push.py --services 10000 --proxies 10 --unscoped
    .venv/bin/python bench/push.py --services 1000 --proxies 2000 --scoped --direct

A real `meshward serve` process follows a real git repository in a temp dir holding M services (namespaces of 20;
each a Service, a VirtualService with a header match, an 80/15/5 split, retries and a timeout, a DestinationRule
with 3 subsets of 2 endpoints: `push_mesh`); scoped runs add a namespace-wide Sidecar (egress `./*`) per namespace.
P simulated proxies (`push_client`: real ADS streams, half SotW and half delta, many per process, in client
processes apart from the server) each connect as one workload of one service and ACK everything. Then one line
changes (svc1's weights, 80/15/5 -> 70/25/5), is committed, and the benchmark waits until every affected proxy
(the changed namespace when scoped, everyone otherwise) has received and ACKed the new routes.

Reported: the full compile of the tree; from the commit to the last ACK per affected proxy, p50/p99/max, split into
detect (commit -> the poll saw it), compile (the build), per-proxy compile (every connected proxy's snapshot
resolved), serialize (our response encoding, CPU), and receive/ACK (client side); bytes pushed for the change,
delta against SotW; server RSS with no proxy and with P (and per proxy); the ratio of our encode CPU to the raw
protobuf serialization of the same bytes (SerializeToString of the messages, measured here on the same snapshot).

Figures measured on the 2-core machine (2026-11-23; server, two client processes and the benchmark share the two
cores); targets in brackets.

  M=1000, P=2000, scoped
    full compile 0.41 s [< 2 s]; server RSS 170 MB at P=0, 426 MB at P=2000, 131 KB per proxy [< 0.5 GB]
    2000 proxies connected and in sync in 6.7 s; 2000 distinct snapshots share 22,104 distinct resources (10 MB)
    commit seen -> last ACK of the 40 affected proxies: p50 0.35 s, p99 0.39 s, max 0.39 s [< 0.5 s p99]:
    detect 0.40 s (0.25 s poll, not counted), compile 0.11 s, re-resolving all 2000 connected proxies 0.19 s
    (0.1 ms each: unaffected proxies get their previous snapshot object back), received 0.24 s (p50) / 0.28 s (p99)
    after publish, ACK < 10 ms after receipt
    bytes for the change: 43 KB to each of the 40 affected proxies (the changed RouteConfiguration), SotW and delta
    alike; nothing to the other 1960
    encode CPU 3.1 ms vs raw SerializeToString of the same bytes 2.1 ms: 1.5x [< 2x] (1.0x to 1.5x over three runs)
  M=1000, P=200, unscoped
    RSS 170 MB at P=0, 685 MB at P=200 (2.6 MB per proxy: every proxy's CDS table of 8,000 clusters is its own, since
    its inbound clusters differ); re-resolving 7.2 ms per proxy; 2.1 MB per proxy per commit (the port's whole route
    table); last ACK p50 1.7 s, p99 3.1 s after the commit is seen; encode 2.0x raw
  M=10000, P=10, unscoped (where it bends)
    full compile 4.5 s; RSS 872 MB at P=0, 1.7 GB at P=10; compile after the commit 1.1 s, 87 ms per proxy;
    22 MB per proxy per commit; last ACK 3.9 s after the commit is seen; encode 2.4x raw
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import push_client
import push_mesh
import push_server
from prometheus_client.parser import text_string_to_metric_families

from compiler import build as build_mod
from compiler import load
from reconciler.ops import envoy_process

CHANGED_SERVICE = 1
NEW_WEIGHTS = (70, 25, 5)
ROOT = Path(__file__).resolve().parents[1]


# ---- the server --------------------------------------------------------------------------------------------------

def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@e",
                        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@e"})


def make_repo(root: Path, services: int, *, scoped: bool) -> Path:
    repo = root / "repo"
    push_mesh.write(repo, services, scoped=scoped)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "mesh")
    return repo


@dataclasses.dataclass
class Server:
    process: subprocess.Popen[bytes]
    xds: str
    admin: str

    def metrics(self) -> dict[str, float]:
        """Every sample as `name{labels}` -> value."""
        with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=30) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.admin}/readyz", timeout=5) as resp:
                return resp.status == 200
        except OSError:
            return False


@contextlib.contextmanager
def server(repo: Path, workdir: Path) -> Iterator[Server]:
    xds, admin = f"127.0.0.1:{envoy_process.free_port()}", f"127.0.0.1:{envoy_process.free_port()}"
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "meshward", "serve", "--repo", str(repo), "--poll-interval", "0.25",
         "--xds-address", xds, "--admin-address", admin, "--workdir", str(workdir / "clone"),
         # every simulated proxy connects from 127.0.0.1; unscoped 10,000-service sidecars are 22 MB each
         "--max-streams-per-peer", "1000000", "--max-config-bytes", str(1 << 30)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        yield Server(process, xds, admin)
    finally:
        envoy_process.stop(process)
        log.close()


def wait(check, timeout: float, what: str, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(what)


# ---- the clients -------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Clients:
    pipes: list[Connection]
    processes: list[multiprocessing.process.BaseProcess]
    delta_of: dict[int, bool]
    failures: int = 0          # streams that failed and reconnected, all processes
    first_failure: list[str] = dataclasses.field(default_factory=list)

    def ask(self, command: str) -> list[object]:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def synced(self) -> int:
        total, self.failures = 0, 0
        for answer in self.ask("status"):
            if answer[0] == "error":  # type: ignore[index]
                raise RuntimeError(f"a client process failed: {answer[1]}")  # type: ignore[index]
            _, synced, failures, first = answer  # type: ignore[misc]
            total += synced
            self.failures += failures
            self.first_failure = first or self.first_failure
        return total


@contextlib.contextmanager
def clients(address: str, services: int, proxies: int, processes: int) -> Iterator[Clients]:
    ctx = multiprocessing.get_context("spawn")
    pipes, procs, delta_of = [], [], {}
    for k in range(processes):
        mine = [(i, push_mesh.node_id(i, services)) for i in range(k, proxies, processes)]
        delta = k % 2 == 1  # half the processes speak delta xDS, half SotW
        delta_of.update({i: delta for i, _ in mine})
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=push_client.run, args=(address, mine, delta, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    group = Clients(pipes, procs, delta_of)
    try:
        yield group
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send("stop")
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


# ---- figures -----------------------------------------------------------------------------------------------------

def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def triple(values: Sequence[float]) -> str:
    return f"p50 {pct(values, 0.5):6.3f}s  p99 {pct(values, 0.99):6.3f}s  max {max(values, default=float('nan')):6.3f}s"


def histogram_total(metrics: dict[str, float], name: str, suffix: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(f"{name}_{suffix}"))


def raw_rates(repo: Path, services: int, proxy: int) -> dict[str, float]:
    """Seconds per byte of protobuf's own SerializeToString, per type, on one affected proxy's snapshot."""
    build = build_mod.build([repo], parse_cache=load.ParseCache())
    snap = build_mod.snapshot_for(build, push_mesh.node_id(proxy, services))
    rates = {}
    for type_url, resources in snap.by_type.items():
        messages = [r.message for r in resources.values()]
        size = sum(len(r.serialized) for r in resources.values())
        if not size:
            continue
        started = time.perf_counter()
        for _ in range(3):
            for m in messages:
                m.SerializeToString()
        rates[type_url] = (time.perf_counter() - started) / 3 / size
    return rates


def run(services: int, proxies: int, *, scoped: bool, processes: int) -> None:
    label = f"M={services} P={proxies} {'scoped' if scoped else 'unscoped'}"
    keep = os.environ.get("PUSH_KEEP")
    with contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory(prefix="meshward-push-") as tmp:
        root = Path(tmp)
        repo = make_repo(root, services, scoped=scoped)
        started = time.time()
        with server(repo, root) as srv:
            wait(srv.ready, 600, "server ready", 0.2)
            m0 = srv.metrics()
            print(f"{label}: full compile {m0['meshward_compile_seconds_sum']:.2f}s "
                  f"(start to ready {time.time() - started:.1f}s), RSS at P=0 "
                  f"{m0['process_resident_memory_bytes'] / 2**20:.0f} MB", flush=True)
            with clients(srv.xds, services, proxies, processes) as group:
                t = time.time()
                wait(lambda: group.synced() == proxies, 3600, "proxies in sync", 1.0)
                if group.failures:
                    print(f"  ({group.failures} client streams failed and reconnected, e.g. {group.first_failure})",
                          flush=True)
                m1 = srv.metrics()
                rss0, rss = m0["process_resident_memory_bytes"], m1["process_resident_memory_bytes"]
                print(f"  {proxies} proxies connected and in sync in {time.time() - t:.1f}s; server RSS "
                      f"{rss / 2**20:.0f} MB ({(rss - rss0) / max(proxies, 1) / 1024:.0f} KB per proxy); "
                      f"distinct snapshots {m1['meshward_snapshots']:.0f}, distinct resources "
                      f"{m1['meshward_snapshot_resources']:.0f} ({m1['meshward_snapshot_resource_bytes'] / 2**20:.1f} MB)",
                      flush=True)
                group.ask("record")
                change(git_probe(srv, repo), group, repo, services, proxies, scoped=scoped)


@dataclasses.dataclass
class Probe:
    """What `change` needs from a server: trigger the change, then the phase times, encode CPU and process CPU."""

    trigger: Callable[[], None]
    phases: Callable[[], tuple[float, float, float]]   # (commit seen, publish started, publish finished)
    encode_cpu: Callable[[], float]
    cpu: Callable[[], float]


def git_probe(srv: Server, repo: Path) -> Probe:
    def trigger() -> None:
        push_mesh.set_weights(repo, CHANGED_SERVICE, NEW_WEIGHTS)
        git(repo, "commit", "-q", "-am", "svc1: 70/25/5")

    def phases() -> tuple[float, float, float]:
        m = srv.metrics()
        return (m["meshward_last_commit_seen_timestamp_seconds"], m["meshward_last_publish_started_timestamp_seconds"],
                m["meshward_last_publish_finished_timestamp_seconds"])

    return Probe(trigger, phases,
                 lambda: histogram_total(srv.metrics(), "meshward_xds_encode_seconds", "sum"),
                 lambda: srv.metrics()["process_cpu_seconds_total"])


def change(probe: Probe, group: Clients, repo: Path, services: int, proxies: int, *, scoped: bool) -> None:
    encode_before, cpu_before = probe.encode_cpu(), probe.cpu()
    committed = time.time()
    probe.trigger()
    affected = set(push_mesh.affected(proxies, services, CHANGED_SERVICE, scoped=scoped))
    log: list[push_client.Received] = []
    done: dict[int, push_client.Received] = {}

    def collect() -> bool:
        for batch in group.ask("report"):
            log.extend(push_client.Received(*r) for r in batch)  # type: ignore[union-attr]
        for r in log:
            if r.type_url == push_client.RDS and r.stream in affected and r.at >= committed:
                done.setdefault(r.stream, r)
        return len(done) == len(affected)

    wait(collect, 3600, "every affected proxy ACKed the change", 0.5)
    time.sleep(1.5)  # let anything else the change caused arrive, to count its bytes
    collect()
    seen, pub_start, pub_end = probe.phases()
    from_seen = [r.acked_at - seen for r in done.values()]
    print(f"  change (svc1 weights) -> {len(affected)} affected proxies; last ACK after the commit is seen: "
          f"{triple(from_seen)}", flush=True)
    print(f"    detect {seen - committed:6.3f}s | compile {pub_start - seen:6.3f}s | per-proxy compile of all "
          f"{proxies} connected {pub_end - pub_start:6.3f}s ({(pub_end - pub_start) / max(proxies, 1) * 1000:.1f} "
          f"ms each) | received after publish {triple([r.at - pub_start for r in done.values()])} | "
          f"ACK written after receipt {triple([r.acked_at - r.at for r in done.values()])}", flush=True)
    report_bytes(log, group.delta_of, committed)
    if os.environ.get("PUSH_DEBUG"):
        for r in sorted(log, key=lambda r: r.at):
            print(f"      {r.at - committed:+.3f}s stream {r.stream} {r.type_url.rsplit('.', 1)[-1]} {r.version} "
                  f"{r.nbytes}")
    encode, cpu = probe.encode_cpu() - encode_before, probe.cpu() - cpu_before
    rates = raw_rates(repo, services, min(affected))
    raw = sum(r.nbytes * rates.get(r.type_url, 0.0) for r in log if r.at >= committed)
    print(f"    serialize: our encode CPU {encode * 1000:.1f} ms vs raw SerializeToString of the same bytes "
          f"{raw * 1000:.1f} ms: ratio {encode / raw if raw else float('nan'):.2f}x; server CPU over the whole "
          f"change {cpu:.2f}s", flush=True)


def report_bytes(log: list[push_client.Received], delta_of: dict[int, bool], since: float) -> None:
    for mode, delta in (("SotW", False), ("delta", True)):
        rows = [r for r in log if r.at >= since and delta_of[r.stream] is delta]
        streams = {r.stream for r in rows}
        total = sum(r.nbytes for r in rows)
        by_type = {}
        for r in rows:
            by_type[r.type_url.rsplit(".", 1)[-1]] = by_type.get(r.type_url.rsplit(".", 1)[-1], 0) + r.nbytes
        per = total / len(streams) if streams else 0
        print(f"    bytes pushed, {mode:5}: {total / 1e6:8.2f} MB to {len(streams)} proxies "
              f"({per / 1e3:.1f} KB each; by type {by_type})", flush=True)


def run_direct(services: int, proxies: int, *, scoped: bool, processes: int) -> None:
    """The same measurement against `push_server` (no git, no per-commit export): the push path alone."""
    label = f"M={services} P={proxies} {'scoped' if scoped else 'unscoped'} --direct"
    with tempfile.TemporaryDirectory(prefix="meshward-push-") as tmp:
        tree = push_mesh.write(Path(tmp) / "tree", services, scoped=scoped)
        parent, child = multiprocessing.get_context("spawn").Pipe()
        proc = multiprocessing.get_context("spawn").Process(target=push_server.run, args=(tree, child), daemon=True)
        started = time.time()
        proc.start()
        try:
            _, port = parent.recv()

            def ask(command: str) -> Any:
                parent.send(command)
                return parent.recv()

            rss0 = ask("rss")
            print(f"{label}: compile and listen {time.time() - started:.1f}s, RSS at P=0 {rss0 / 2**20:.0f} MB",
                  flush=True)
            with clients(f"127.0.0.1:{port}", services, proxies, processes) as group:
                t = time.time()
                wait(lambda: group.synced() == proxies, 3600, "proxies in sync", 1.0)
                rss = ask("rss")
                print(f"  {proxies} proxies in sync in {time.time() - t:.1f}s; RSS {rss / 2**20:.0f} MB "
                      f"({(rss - rss0) / max(proxies, 1) / 1024:.0f} KB per proxy)", flush=True)
                group.ask("record")
                change(direct_probe(tree, ask, parent), group, tree, services, proxies, scoped=scoped)
        finally:
            with contextlib.suppress(OSError):
                parent.send("stop")
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def direct_probe(tree: Path, ask: Callable[[str], Any], pipe: Connection) -> Probe:
    """`push_server`'s answers: after "change" its next message is "changed", read before asking anything else."""
    phases: list[tuple[float, float, float]] = []
    pending = [False]

    def trigger() -> None:
        push_mesh.set_weights(tree, CHANGED_SERVICE, NEW_WEIGHTS)
        pipe.send("change")
        pending[0] = True

    def seen_phases() -> tuple[float, float, float]:
        if pending[0]:
            _, seen, started, finished = pipe.recv()
            phases.append((seen, started, finished))
            pending[0] = False
        return phases[-1]

    def asked(command: str) -> float:
        if pending[0]:
            seen_phases()
        return float(ask(command))

    return Probe(trigger, seen_phases, lambda: asked("encode"), lambda: asked("cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--proxies", type=int, default=2000)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--scoped", dest="scoped", action="store_true", default=True)
    scope.add_argument("--unscoped", dest="scoped", action="store_false")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--direct", action="store_true",
                        help="serve from a directory in one process (push_server), without git: the push path alone")
    args = parser.parse_args()
    (run_direct if args.direct else run)(args.services, args.proxies, scoped=args.scoped, processes=args.processes)


if __name__ == "__main__":
    main()
