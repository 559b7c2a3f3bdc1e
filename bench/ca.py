"""CA benchmark (issue 15): workload certificates signed per second, and the time for agents to get theirs and
for their proxies to ACK them over SDS.

    .venv/bin/python bench/ca.py --sign 2000 --agents 1000 --concurrency 100 --envoys 20

  sign     CSRs checked and signed in-process (parse_csr + sign_workload), one thread: the CA's own cost
  agents   `meshward serve --ca-dir` in its own process; N agents (the agent's code, `reconciler.identity.agent`)
           in this process, each serving SDS on its own Unix socket and getting its certificate over its own TLS
           connection with its own key and CSR (what `meshward agent` does at start), at most `--concurrency` at
           once. Against each socket, a PROTOCOL CLIENT, NOT ENVOY (`sds_clients.py`, one process for all): two
           SotW StreamSecrets streams, `default` and `ROOTCA`, each requesting, receiving and ACKing with version
           and nonce as Envoy does. Wall time until all hold a certificate, and until every stream has ACKed.
  envoys   E REAL ENVOYS, each with its own `meshward agent` process, bootstrapped with `--sds-socket`, whose ADS
           config from the same `meshward serve` has an ISTIO_MUTUAL cluster (`ca_envoy.py`): wall time from
           starting them until every Envoy lists both secrets as active in its admin's config dump, and per
           Envoy from its agent's certificate (agent log) to that (Envoy's `last_updated`). A thousand
           Envoys and agents do not fit a small machine; E is what it holds.
Numbers are measured in this one run; nothing here is asserted by the test suite (its smoke test runs it tiny).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ca_envoy

from reconciler.identity import agent, ca, ca_client, certs, tokens
from reconciler.identity.spiffe import Identity

SDS_CLIENTS = Path(__file__).with_name("sds_clients.py")


def bench_sign(count: int, work: Path) -> None:
    authority = ca.load_or_create(work / "ca-sign")
    csrs = [certs.make_csr(certs.new_key(), Identity("cluster.local", "shop", f"sa-{i}")) for i in range(count)]
    start = time.perf_counter()
    for pem in csrs:
        csr, identity = certs.parse_csr(pem)
        authority.sign_workload(csr, identity, authority.lifetime(0))
    elapsed = time.perf_counter() - start
    print(f"sign     {count} certificates in {elapsed:.2f} s: {count / elapsed:,.0f}/s in-process")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(work: Path, ca_port: int, xds_port: int, envoys: int) -> subprocess.Popen[bytes]:
    repo = work / "repo"
    (repo / "mesh").mkdir(parents=True)
    (repo / "mesh" / "mesh.yaml").write_text(ca_envoy.tree(envoys))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "mesh"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    with (work / "serve.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "meshward", "serve", "--repo", str(repo), "--ca-dir",
                                 str(work / "ca"), "--ca-address", f"127.0.0.1:{ca_port}", "--xds-address",
                                 f"127.0.0.1:{xds_port}", "--admin-address", "127.0.0.1:0", "--workdir",
                                 str(work / "w")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for port in (ca_port, xds_port):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("meshward serve did not start")


async def _agents(count: int, concurrency: int, work: Path, sockets: Path, port: int,
                  deadline: float) -> tuple[float, float, dict[str, Any]]:
    """Seconds until every agent holds a certificate, and until every SDS stream ACKed it; the clients' report."""
    (work / "token").write_text(tokens.mint(tokens.load_or_create_key(work / "ca"), tokens.Caller("shop", "web"),
                                            ttl=datetime.timedelta(hours=1)))
    config = agent.AgentConfig(node="bench", ca_address=f"127.0.0.1:{port}", ca_root=work / "root.pem",
                               token_file=work / "token", sds_socket=work / "unused.sock")
    agents = [agent.Agent(dataclasses.replace(config, sds_socket=sockets / f"{i}.sock")) for i in range(count)]
    for a in agents:
        await a.start()
    clients = await asyncio.create_subprocess_exec(sys.executable, str(SDS_CLIENTS), str(sockets), str(count),
                                                   str(deadline), stdout=asyncio.subprocess.PIPE)
    assert clients.stdout is not None
    try:
        if await asyncio.wait_for(clients.stdout.readline(), 120) != b"ready\n":
            raise SystemExit("the SDS clients did not connect")
        gate = asyncio.Semaphore(concurrency)
        root = (work / "root.pem").read_bytes()

        async def one(a: agent.Agent) -> None:
            async with gate, ca_client.channel(config.ca_address, root, own_connection=True) as channel:
                issued = await a.issue(channel)
            await a.store.publish(issued.credentials)  # what Agent.run does after each signing

        start = time.monotonic()
        await asyncio.gather(*(one(a) for a in agents))
        certified = time.monotonic() - start
        report = json.loads(await asyncio.wait_for(clients.stdout.readline(), deadline + 30))
        return certified, float(report["last_ack"]) - start, report
    finally:
        if clients.returncode is None:
            clients.kill()
        await clients.wait()
        for a in agents:
            await a.stop()


def bench_agents(args: argparse.Namespace, work: Path, sockets: Path, ca_port: int) -> None:
    certified, acked, report = asyncio.run(_agents(args.agents, args.concurrency, work, sockets, ca_port,
                                                   args.deadline))
    print(f"agents   {args.agents} agents (own TLS connection, key, CSR; {args.concurrency} at once) certified "
          f"in {certified:.2f} s: {args.agents / certified:,.0f}/s through meshward serve")
    print(f"sds      {report['acked']} of {report['streams']} SDS streams of protocol clients (not Envoy) ACKed "
          f"{acked:.2f} s after the first signing began; NACKed or failed: {report['failed'] or 'none'}")
    if report["acked"] != report["streams"]:
        raise SystemExit("not every SDS stream ACKed")


def bench_envoys(args: argparse.Namespace, work: Path, sockets: Path, ca_port: int, xds_port: int) -> None:
    timing = ca_envoy.run(args.envoys, work=work, sockets=sockets, ca_address=f"127.0.0.1:{ca_port}",
                          xds_address=f"127.0.0.1:{xds_port}", deadline_s=args.deadline)
    print(f"envoys   {args.envoys} real Envoys, each with its own meshward agent process: every one holds default "
          f"and ROOTCA {timing.last:.2f} s after they were started (the first at {timing.first:.2f} s; the last "
          f"agent serving SDS at {timing.agents_up:.2f} s)")
    print(f"envoys   from each agent's certificate to its Envoy accepting both secrets: median "
          f"{statistics.median(timing.delivery) * 1000:.0f} ms, max {max(timing.delivery) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sign", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--envoys", type=int, default=20)
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds to wait for the ACKs of each phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mw-bench-ca-") as tmp, \
            tempfile.TemporaryDirectory(prefix="mw-") as sockets:  # unix socket paths are short
        work = Path(tmp)
        bench_sign(args.sign, work)
        ca_port, xds_port = _free_port(), _free_port()
        proc = _serve(work, ca_port, xds_port, args.envoys)
        try:
            (work / "root.pem").write_text(certs.pem(ca.load(work / "ca").root))
            bench_agents(args, work, Path(sockets), ca_port)
            bench_envoys(args, work, Path(sockets), ca_port, xds_port)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
