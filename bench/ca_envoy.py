"""The CA benchmark's real-Envoy phase (`bench/ca.py --envoys N`): N real Envoys, each with its own `meshward agent`
process, against one `meshward serve` whose ADS gives every one of them a cluster with ISTIO_MUTUAL (its transport
socket takes `default` and `ROOTCA` from the agent over `sds-grpc`), timed from the moment the agents and Envoys
are started until every Envoy's admin lists both secrets among its active ones (Envoy makes a secret active only
once it has accepted it, and ACKs it then). Each Envoy's token is minted from the CA directory as `meshward token`
does, its bootstrap made by `meshward bootstrap --sds-socket`'s function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from reconciler.identity import tokens
from reconciler.ops import envoy_process
from reconciler.xds import bootstrap

WORKLOAD = "127.0.0.2"

SERVICE = f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{app: web}}
  ports:
  - {{name: http, port: 8080}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web, namespace: shop}}
spec:
  address: {WORKLOAD}
  serviceAccount: web
  labels: {{app: web}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: web, namespace: shop}}
spec:
  host: web.shop.svc.cluster.local
  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}
"""


def _address(i: int) -> str:
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def _node(i: int) -> str:
    return f"sidecar~{_address(i)}~b{i}.shop~shop.svc.cluster.local"


def tree(count: int) -> str:
    """The service every Envoy reaches with ISTIO_MUTUAL, and a WorkloadEntry for each Envoy (its own service
    account): meshward serves a config only to a proxy whose workload it knows."""
    return SERVICE + "".join(f"""---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: b{i}, namespace: shop}}
spec: {{address: {_address(i)}, serviceAccount: b{i}, labels: {{app: b{i}}}}}
""" for i in range(count))


def _active_secrets(admin_port: int) -> dict[str, datetime.datetime]:
    """The secrets Envoy holds as active, and when it last accepted each."""
    url = f"http://127.0.0.1:{admin_port}/config_dump?resource=dynamic_active_secrets"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            dump = json.load(resp)
    except (OSError, ValueError):
        return {}
    return {entry["name"]: datetime.datetime.fromisoformat(entry["last_updated"])
            for entry in dump.get("configs", []) if "name" in entry and "last_updated" in entry}


def _agent_served(log: Path) -> datetime.datetime:
    """When the agent published its first certificate: its log line `... INFO reconciler.identity.agent: serving`
    (logging's local time, to the millisecond)."""
    line = next(line for line in log.read_text().splitlines() if " reconciler.identity.agent: serving " in line)
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone(datetime.UTC)


def _sidecar(stack: contextlib.ExitStack, i: int, *, work: Path, sockets: Path, ca_address: str,
             xds_address: str) -> int:
    """Agent and Envoy number `i`, stopped with `stack`; returns Envoy's admin port."""
    node = _node(i)
    token = work / f"b{i}.token"
    token.write_text(tokens.mint(tokens.load_or_create_key(work / "ca"), tokens.Caller("shop", f"b{i}"),
                                 ttl=datetime.timedelta(hours=1)))
    sock = sockets / f"e{i}.sock"
    log = (work / f"agent-{i}.log").open("wb")
    stack.callback(log.close)
    agent = subprocess.Popen([sys.executable, "-m", "meshward", "agent", "--node", node, "--ca-address", ca_address,
                              "--ca-root", str(work / "root.pem"), "--token-file", str(token),
                              "--sds-socket", str(sock)], stdout=log, stderr=subprocess.STDOUT)
    stack.callback(envoy_process.stop, agent)
    admin = envoy_process.free_port()
    config = work / f"envoy-{i}.json"
    config.write_text(json.dumps(bootstrap.render(node, xds_address, admin_port=admin, sds_socket=str(sock))))
    stack.enter_context(envoy_process.running(config, log=work / f"envoy-{i}.log"))
    return admin


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds from starting the agents and Envoys, and from each agent's certificate to its Envoy's ACK."""
    agents_up: float  # the last agent's SDS socket exists (its Python process has started)
    first: float  # the first Envoy holds both secrets
    last: float  # every Envoy does
    # Per Envoy: its agent publishing the certificate -> Envoy accepting the later secret. An Envoy that reached
    # the socket before its agent served there retries on gRPC's backoff, as an injected pod's would.
    delivery: list[float]


def run(count: int, *, work: Path, sockets: Path, ca_address: str, xds_address: str,
        deadline_s: float = 300.0) -> Timing:
    with contextlib.ExitStack() as stack:
        start = time.monotonic()
        admins = [_sidecar(stack, i, work=work, sockets=sockets, ca_address=ca_address, xds_address=xds_address)
                  for i in range(count)]
        up: dict[int, float] = {}
        done: dict[int, float] = {}
        accepted: dict[int, datetime.datetime] = {}
        while len(done) < count:
            for i, admin in enumerate(admins):
                if i not in up and (sockets / f"e{i}.sock").exists():
                    up[i] = time.monotonic() - start
                if i not in done and {"default", "ROOTCA"} <= (active := _active_secrets(admin)).keys():
                    done[i] = time.monotonic() - start
                    accepted[i] = max(active["default"], active["ROOTCA"])
            if time.monotonic() - start > deadline_s:
                tails = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                                for p in (work / "serve.log", work / "agent-0.log", work / "envoy-0.log"))
                raise SystemExit(f"only {len(done)} of {count} Envoys hold their secrets after "
                                 f"{deadline_s:.0f}s{tails}")
            time.sleep(0.1)
        delivery = [(accepted[i] - _agent_served(work / f"agent-{i}.log")).total_seconds() for i in range(count)]
        return Timing(max(up.values(), default=0.0), min(done.values()), max(done.values()), delivery)
