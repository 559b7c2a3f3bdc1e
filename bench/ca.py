"""CA benchmark (issue 15): workload certificates signed per second, and the time for N agents to get theirs.

    .venv/bin/python bench/ca.py --sign 2000 --agents 1000 --concurrency 100

  sign     CSRs checked and signed in-process (parse_csr + sign_workload), one thread: the CA's own cost
  agents   `meshward serve --ca-dir` in its own process; N agents in this process, each with its own TLS
           connection, key and CSR (what `meshward agent` does at start), at most `--concurrency` at once:
           wall time until all hold a certificate, and the CA's rate over TLS + gRPC
No Envoy is started: the time for Envoys to ACK their secrets is not measured here. Numbers are measured in this
one run; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.identity import agent, ca, ca_client, certs, tokens
from reconciler.identity.spiffe import Identity


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


def _serve(work: Path, port: int) -> subprocess.Popen[bytes]:
    repo = work / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=repo, check=True)
    proc = subprocess.Popen([sys.executable, "-m", "meshward", "serve", "--repo", str(repo), "--ca-dir",
                             str(work / "ca"), "--ca-address", f"127.0.0.1:{port}", "--xds-address", "127.0.0.1:0",
                             "--admin-address", "127.0.0.1:0", "--workdir", str(work / "w")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("meshward serve did not start")


async def _agents(count: int, concurrency: int, work: Path, port: int) -> float:
    (work / "token").write_text(tokens.mint(tokens.load_or_create_key(work / "ca"), tokens.Caller("shop", "web"),
                                            ttl=datetime.timedelta(hours=1)))
    (work / "root.pem").write_text(certs.pem(ca.load(work / "ca").root))
    config = agent.AgentConfig(node="bench", ca_address=f"127.0.0.1:{port}", ca_root=work / "root.pem",
                               token_file=work / "token", sds_socket=work / "unused.sock")
    agents = [agent.Agent(config) for _ in range(count)]
    gate = asyncio.Semaphore(concurrency)
    root = (work / "root.pem").read_bytes()

    async def one(a: agent.Agent) -> None:
        async with gate, ca_client.channel(config.ca_address, root, own_connection=True) as channel:
            await a.issue(channel)

    start = time.perf_counter()
    await asyncio.gather(*(one(a) for a in agents))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sign", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mw-bench-ca-") as tmp:
        work = Path(tmp)
        bench_sign(args.sign, work)
        port = _free_port()
        proc = _serve(work, port)
        try:
            elapsed = asyncio.run(_agents(args.agents, args.concurrency, work, port))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        print(f"agents   {args.agents} agents (own TLS connection, key, CSR; {args.concurrency} at once) certified "
              f"in {elapsed:.2f} s: {args.agents / elapsed:,.0f}/s through meshward serve")


if __name__ == "__main__":
    main()
