"""The reconciler's commands: serve, bootstrap, demo, status, proxy-config, describe, token, agent. Flag names are a contract
(DESIGN.md): scripts rely on them. The reconciler's modules are imported only by the command that runs, so that
`meshward validate` in CI never loads gRPC or the Kubernetes client."""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshward import build_inputs, views
from reconciler.inject import sidecar

if TYPE_CHECKING:
    from compiler.build import Metrics

DEFAULT_XDS = "127.0.0.1:15010"
DEFAULT_ADMIN = "127.0.0.1:15014"
DEFAULT_CA = "127.0.0.1:15012"
DEFAULT_INJECT = "127.0.0.1:15017"  # Istio's webhook port
ISTIO_STATS_PORT = 15090  # Istio's proxies serve Prometheus metrics there (prometheus.io/port)
INJECT_DEFAULTS = sidecar.Options()
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _positive(kind: type[int | float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value
    return parse


def _address(text: str) -> str:
    """HOST:PORT for a server to bind, refused at parse time rather than when the server fails to start. Port 0
    takes a free one (the log says which)."""
    _, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port from 0 to 65535: {text!r}")
    return text


def _host_name(text: str) -> str:
    """A DNS name for a Host header to carry, without port (what `--admin-allowed-host` compares)."""
    name = text.strip().lower()
    if not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", name):
        raise argparse.ArgumentTypeError(f"expected a host name without port, like meshward.meshward-system.svc: "
                                         f"{text!r}")
    return name


def _http_url(text: str) -> str:
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL like http://prometheus:9090: {text!r}")
    return text


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("serve", help="run the reconciler: follow a git repo and serve xDS")
    s.add_argument("--repo", required=True, metavar="URL_OR_PATH", help="the git repository to follow")
    s.add_argument("--repo-credentials-file", default=None, metavar="FILE",
                   help="one line 'username:password' (or token) for an https repo; default: the environment's "
                        "MESHWARD_GIT_USERNAME and MESHWARD_GIT_PASSWORD")
    s.add_argument("--branch", default="main", help="the branch to follow (default: %(default)s)")
    s.add_argument("--path", default=".", metavar="DIR",
                   help="policy directory inside the repo (default: %(default)s, the whole repo)")
    s.add_argument("--rev", default=None, help="pin a tag or commit instead of following the branch")
    s.add_argument("--poll-interval", type=float, default=30.0, metavar="S",
                   help="seconds between fetches of the repo; a webhook fetches at once (default: %(default)s)")
    s.add_argument("--xds-address", type=_address, default=DEFAULT_XDS, metavar="H:P",
                   help="where proxies connect over ADS; port 0 takes a free one (default: %(default)s)")
    s.add_argument("--admin-address", type=_address, default=DEFAULT_ADMIN, metavar="H:P",
                   help="health, metrics, /status, the mesh page (/mesh) and webhook over HTTP; port 0 takes a "
                        "free one (default: %(default)s)")
    s.add_argument("--admin-allowed-host", type=_host_name, action="append", default=[], metavar="NAME",
                   help="a name clients may reach the admin port by (a Service's, an ingress's), beside IP "
                        "addresses and localhost; other Host headers get 403, against DNS rebinding (repeatable)")
    s.add_argument("--prometheus-url", type=_http_url, default=None, metavar="URL",
                   help="the Prometheus that scrapes the proxies (http://prometheus:9090): the mesh page shows "
                        "request rates per edge from it")
    s.add_argument("--workdir", default=None, help="where to clone (default: a temporary directory)")
    s.add_argument("--webhook-secret-file", default=None, metavar="FILE",
                   help="the secret a git host signs /webhook calls with (default: the environment's "
                        "MESHWARD_WEBHOOK_SECRET; with neither, /webhook refuses every call)")
    s.add_argument("--verify-signatures", action="store_true",
                   help="serve only commits signed by a key of --allowed-signers")
    s.add_argument("--allowed-signers", default=None, metavar="FILE",
                   help="ssh allowed_signers file of the keys --verify-signatures accepts")
    s.add_argument("--kubeconfig", default=None, metavar="FILE|in-cluster",
                   help="watch Services, EndpointSlices, Pods, Namespaces and TLS Secrets of this cluster "
                        "('in-cluster': the pod's service account)")
    s.add_argument("--kube-context", default=None, metavar="NAME", help="kubeconfig context (default: current)")
    s.add_argument("--credentials-dir", default=None, metavar="DIR",
                   help="TLS credentials for Gateway credentialName: DIR/<name>/{tls.crt,tls.key,ca.crt}")
    s.add_argument("--credentials-poll-interval", type=float, default=2.0, metavar="S",
                   help="how often --credentials-dir is checked for changes (default: %(default)s)")
    s.add_argument("--max-connection-age", type=float, default=0.0, metavar="S",
                   help="close ADS connections after S seconds (gRPC GOAWAY) so proxies reconnect and spread over "
                        "replicas (default: %(default)s, never)")
    s.add_argument("--strict", action="store_true",
                   help="analyzer errors about configs Pilot serves (flagged) block a commit too")
    s.add_argument("--max-config-bytes", type=_positive(int), default=16 << 20, metavar="N",
                   help="per-proxy budget: a proxy whose config would be larger (serialized) keeps its previous "
                        "one and is listed under proxyErrors (default: %(default)s, 16 MiB)")
    caps = s.add_argument_group("limits per ADS client (over a limit: the stream ends with RESOURCE_EXHAUSTED or "
                                "INVALID_ARGUMENT, a rate-limited log line, meshward_xds_limited_total{limit})")
    caps.add_argument("--max-streams-per-peer", type=_positive(int), default=128, metavar="N",
                      help="open ADS streams from one client IP address (default: %(default)s)")
    caps.add_argument("--max-node-id-bytes", type=_positive(int), default=1024, metavar="N",
                      help="length of a proxy's node id (default: %(default)s)")
    caps.add_argument("--max-resource-names", type=_positive(int), default=250_000, metavar="N",
                      help="resource names one stream may subscribe to, all types together (default: %(default)s)")
    caps.add_argument("--max-responses-per-second", type=_positive(float), default=10.0, metavar="R",
                      help="sustained responses per stream; past it, requests are coalesced (default: %(default)s)")
    caps.add_argument("--response-burst", type=_positive(int), default=50, metavar="N",
                      help="responses a stream may get at once before the rate applies (default: %(default)s)")
    s.add_argument("--shutdown-grace", type=float, default=5.0, metavar="S",
                   help="on SIGTERM/SIGINT, seconds each ADS stream gets to finish the response it is writing "
                        "before it ends with UNAVAILABLE (default: %(default)s)")
    s.add_argument("--ca-dir", default=None, metavar="DIR",
                   help="serve a CA from Istio's cacerts files in DIR (a self-signed root is made if DIR is empty)")
    s.add_argument("--ca-secret", default=None, metavar="NAME",
                   help="cluster mode: keep the CA in this Secret of the reconciler's namespace instead of --ca-dir "
                        "(made with a self-signed root if absent; replicas share it)")
    s.add_argument("--namespace", default=None, metavar="NS",
                   help="the reconciler's own namespace, for --ca-secret (default: $POD_NAMESPACE, or the pod's "
                        "service account namespace with --kubeconfig in-cluster)")
    s.add_argument("--ca-address", default=DEFAULT_CA, metavar="H:P",
                   help="where the CA serves (with --ca-dir or --ca-secret) (default: %(default)s)")
    s.add_argument("--ca-dns-name", action="append", default=[], metavar="NAME",
                   help="another name agents and proxies reach the reconciler by (e.g. its Service), put in the "
                        "certificates of the CA and of mTLS ADS; repeatable")
    s.add_argument("--xds-tls", action="store_true",
                   help="serve ADS over mTLS: proxies authenticate with their agent's certificate and get only "
                        "their own namespace's configs (needs the CA)")
    build_inputs.add_trust(s)
    build_inputs.add_fetch(s, offline=False)
    s.add_argument("--jwks-refresh-interval", type=_positive(float), default=20 * 60.0, metavar="S",
                   help="seconds between fetches of a jwksUri's key set; a failed one is retried every minute "
                        "(default: %(default)s, Istio's)")
    inj = s.add_argument_group("sidecar injection webhook (for pods of namespaces labelled istio-injection=enabled; "
                               "deploy/webhook.yaml)")
    inj.add_argument("--inject-webhook", action="store_true",
                     help="serve the mutating admission webhook that injects Envoy and the agent (HTTPS, POST /inject)")
    inj.add_argument("--inject-webhook-address", type=_address, default=DEFAULT_INJECT, metavar="H:P",
                     help="where the webhook serves (default: %(default)s)")
    inj.add_argument("--inject-webhook-cert", default=None, metavar="FILE",
                     help="the webhook's certificate chain, PEM (default: one from the mesh CA of --ca-dir, for "
                          "its address and the --ca-dns-name names)")
    inj.add_argument("--inject-webhook-key", default=None, metavar="FILE", help="its private key, PEM")
    inj.add_argument("--inject-xds-address", default=INJECT_DEFAULTS.xds_address, metavar="H:P",
                     help="the xDS address injected proxies reach (default: %(default)s)")
    inj.add_argument("--inject-ca-address", default=INJECT_DEFAULTS.ca_address, metavar="H:P",
                     help="the CA address injected agents reach (default: %(default)s)")
    inj.add_argument("--inject-proxy-image", default=INJECT_DEFAULTS.proxy_image, metavar="IMAGE",
                     help="Envoy's image (default: %(default)s)")
    inj.add_argument("--inject-agent-image", default=INJECT_DEFAULTS.agent_image, metavar="IMAGE",
                     help="meshward's image, for the agent (default: %(default)s)")

    b = sub.add_parser("bootstrap", help="print an Envoy bootstrap that connects to meshward over ADS")
    b.add_argument("--node", required=True, metavar="NODE_ID", help="the proxy, TYPE~IP~NAME.NAMESPACE~DOMAIN")
    b.add_argument("--xds-address", default=DEFAULT_XDS, metavar="H:P",
                   help="where `meshward serve` listens for ADS (default: %(default)s)")
    b.add_argument("--delta", action="store_true", help="use incremental (delta) xDS")
    b.add_argument("--grpc", action="store_true",
                   help="a proxyless gRPC application's bootstrap (GRPC_XDS_BOOTSTRAP) instead of Envoy's")
    b.add_argument("--admin-port", type=int, default=None,
                   help="Envoy's admin interface on 127.0.0.1:PORT (default: none)")
    b.add_argument("--stats-address", default=None, metavar="H:P|off",
                   help="Prometheus metrics at http://H:P/stats/prometheus, read from the admin interface (default: "
                        "0.0.0.0:15090 as Istio's proxies, when --admin-port is given; off: none)")
    b.add_argument("--policy", default=None, metavar="PATH",
                   help="the policy tree the proxy's Telemetry metrics settings are read from (disabled metrics, "
                        "removed labels, reportingInterval: Envoy reads them at start only; default: Istio's)")
    b.add_argument("--sds-socket", default=None, metavar="PATH", help="add the cluster for `meshward agent`'s SDS")
    b.add_argument("--xds-tls", action="store_true",
                   help="reach `serve --xds-tls` over mTLS with the agent's certificate (needs --sds-socket)")
    b.add_argument("-o", "--output", metavar="FILE", help="write there instead of stdout")

    d = sub.add_parser("demo", help="local showcase: repo, reconciler, real Envoys and backends")
    d.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (default: %(default)s, run until Ctrl-C)")

    st = sub.add_parser("status", help="proxies connected to a reconciler and their sync state (exit 1: a proxy "
                                       "rejects its config)")
    st.add_argument("--admin-address", default=DEFAULT_ADMIN, metavar="H:P",
                    help="the admin address of `meshward serve` (default: %(default)s)")
    st.add_argument("-o", "--output", choices=("text", "json"), default="text",
                    help="a table, or /status and /debug/proxies as JSON (default: %(default)s)")
    st.add_argument("--history", nargs="?", type=_positive(int), const=10, default=None, metavar="N",
                    help="instead: the last N commits seen (N: 10 when not given; /status keeps 20), newest first, "
                         "with their result (Served, Superseded, or why rejected, with the first errors), time and "
                         "the proxies that ACKed their config")

    dr = sub.add_parser("drift", help="the served commit against the live mesh: proxies not on it, Services and "
                                      "endpoints the cluster lacks or moved, Istio resources Git does not hold "
                                      "(exit 1: drifted)")
    dr.add_argument("--admin-address", default=DEFAULT_ADMIN, metavar="H:P",
                    help="the admin address of `meshward serve` (default: %(default)s)")
    dr.add_argument("-o", "--output", choices=("text", "json"), default="text",
                    help="one line per finding, or /status's drift section as JSON (default: %(default)s)")

    t = sub.add_parser("token", help="mint a local identity token for `meshward agent`")
    t.add_argument("--ca-dir", required=True, metavar="DIR", help="the CA's directory, as `serve --ca-dir`")
    t.add_argument("--namespace", required=True, metavar="NS", help="the workload's namespace")
    t.add_argument("--service-account", required=True, metavar="SA", help="the workload's service account")
    t.add_argument("--ttl", type=duration, default=datetime.timedelta(hours=1), metavar="DURATION",
                   help="how long the token is accepted, e.g. 1h, 30m, 1h30m (default 1h)")
    t.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the token")

    a = sub.add_parser("agent", help="beside an Envoy: a key in memory, its certificate from the CA, served over SDS")
    a.add_argument("--node", required=True, metavar="NODE_ID", help="the proxy, TYPE~IP~NAME.NAMESPACE~DOMAIN")
    a.add_argument("--ca-address", default=DEFAULT_CA, metavar="H:P",
                   help="where `meshward serve --ca-dir` serves the CA (default: %(default)s)")
    a.add_argument("--ca-root", required=True, metavar="FILE", help="the root(s) that verify the CA, PEM")
    a.add_argument("--token-file", required=True, metavar="FILE", help="from `meshward token`, read at each renewal")
    a.add_argument("--sds-socket", required=True, metavar="PATH", help="the unix socket Envoy reaches SDS on")
    a.add_argument("--trust-domain", default="cluster.local",
                   help="the SPIFFE trust domain of workload identities (default: %(default)s)")
    a.add_argument("--cert-ttl", type=duration, default=datetime.timedelta(hours=24), metavar="DURATION",
                   help="the certificate lifetime to ask for (default 24h); renewed at half of it")

    pc = sub.add_parser("proxy-config", help="one proxy's clusters, listeners, routes, endpoints or secrets, as "
                                             "`istioctl proxy-config` shows them (exit 1: unknown proxy)")
    de = sub.add_parser("describe", help="which Services, VirtualServices, DestinationRules, Gateways, Sidecar and "
                                         "policies apply to one proxy, and why (exit 1: unknown proxy)")
    views.add_arguments(pc, de, DEFAULT_ADMIN, DEFAULT_XDS)


def run(args: argparse.Namespace) -> int:
    if args.command == "bootstrap":
        return _bootstrap(args)
    if args.command == "serve":
        from reconciler import serve

        return serve.main(args)
    if args.command == "demo":
        from reconciler.ops import demo

        return demo.main(args)
    if args.command == "status":
        return _status(args)
    if args.command == "drift":
        return _drift(args)
    if args.command == "proxy-config":
        return views.proxy_config(args)
    if args.command == "describe":
        return views.describe(args)
    if args.command == "token":
        return _token(args)
    if args.command == "agent":
        return _agent(args)
    return 2


def duration(text: str) -> datetime.timedelta:
    """A Go-style duration of hours, minutes and seconds (`1h`, `90m`, `1h30m`, `5s`), as Istio's flags take."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 1h, 30m or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    value = datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if not value:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be more than zero")
    return value


def _token(args: argparse.Namespace) -> int:
    from reconciler.identity import token_command, tokens

    try:
        caller = tokens.Caller(args.namespace, args.service_account)
    except ValueError as err:
        print(f"meshward token: {err}", file=sys.stderr)
        return 2
    return token_command.main(Path(args.ca_dir), caller, ttl=args.ttl, output=Path(args.output))


def _bootstrap(args: argparse.Namespace) -> int:
    from reconciler.xds import bootstrap

    try:
        if args.grpc and args.xds_tls:
            raise ValueError("--xds-tls is for Envoy: a proxyless gRPC client has no agent certificate to present "
                             "(README, Proxyless gRPC)")
        if args.grpc:
            doc = bootstrap.render_grpc(args.node, args.xds_address)
        else:
            metrics = _policy_metrics(args.policy, args.node) if args.policy else None
            doc = bootstrap.render(args.node, args.xds_address, delta=args.delta, admin_port=args.admin_port,
                                   sds_socket=args.sds_socket, xds_tls=args.xds_tls,
                                   stats_address=_stats_address(args.stats_address, args.admin_port),
                                   metrics=metrics)
    except ValueError as err:
        print(f"meshward bootstrap: {err}", file=sys.stderr)
        return 2
    except _PolicyError as err:
        print(f"meshward bootstrap: {err}", file=sys.stderr)
        return 1
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


class _PolicyError(Exception):
    """--policy names a tree that does not compile, or that has no such proxy."""


def _policy_metrics(path: str, node_id: str) -> Metrics:
    """The proxy's metrics settings as the tree at `path` compiles them."""
    from compiler import build as build_mod
    from compiler import output

    if not Path(path).exists():
        raise ValueError(f"no such file or directory: {path}")
    result = build_mod.build([path])
    output.render([d for d in result.diagnostics], "text", sys.stderr)
    if not result.ok:
        raise _PolicyError(f"{path} does not compile (errors above)")
    try:
        return build_mod.proxy_config(result, node_id).metrics
    except build_mod.InvalidNodeId as err:
        raise ValueError(str(err)) from err
    except LookupError as err:
        raise _PolicyError(f"error MW0401: {err.args[0] if err.args else err}") from err


def _stats_address(flag: str | None, admin_port: int | None) -> str | None:
    if flag == "off":
        return None
    if flag is None:
        return f"0.0.0.0:{ISTIO_STATS_PORT}" if admin_port is not None else None
    return flag


def _get_json(admin: str, path: str) -> Any:
    with urllib.request.urlopen(f"http://{admin}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def _status(args: argparse.Namespace) -> int:
    """Like `istioctl proxy-status`: what the reconciler serves, then one line per connected proxy. Exit 1 when a
    proxy rejects (NACKs) the config it was sent, so a deploy script can stop on it; 2 when the server is not
    reachable."""
    from reconciler.ops import status_table

    try:
        status = _get_json(args.admin_address, "/status")
        proxies = _get_json(args.admin_address, "/debug/proxies")
    except (urllib.error.URLError, OSError, ValueError) as err:
        print(f"meshward status: cannot reach {args.admin_address}: {err}", file=sys.stderr)
        return 2
    if args.history is not None:
        history = (status.get("history") or [])[:int(args.history)]
        sys.stdout.write(json.dumps(history, indent=2, sort_keys=True) + "\n" if args.output == "json"
                         else status_table.render_history(status, int(args.history)))
        return 0
    if args.output == "json":
        sys.stdout.write(json.dumps({"status": status, "proxies": proxies}, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(status_table.render(status, proxies))
    rejected = status.get("lastResult") == "Degraded" or any(p.get("state") == "NACKED" for p in proxies)
    return 1 if rejected else 0


def _drift(args: argparse.Namespace) -> int:
    """Exit 0 in sync, 1 drifted, 2 when the server cannot be reached or serves no commit yet."""
    from reconciler.ops import drift

    try:
        found = _get_json(args.admin_address, "/status").get("drift")
    except (urllib.error.URLError, OSError, ValueError, AttributeError) as err:
        print(f"meshward drift: cannot reach {args.admin_address}: {err}", file=sys.stderr)
        return 2
    if not isinstance(found, dict):
        print(f"meshward drift: {args.admin_address} serves no commit yet: nothing to compare", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(found, indent=2, sort_keys=True) + "\n" if args.output == "json"
                     else drift.render(found))
    return 0 if found.get("inSync") else 1


def _agent(args: argparse.Namespace) -> int:
    from reconciler.identity import agent

    return agent.main(agent.AgentConfig(
        node=args.node, ca_address=args.ca_address, ca_root=Path(args.ca_root), token_file=Path(args.token_file),
        sds_socket=Path(args.sds_socket), trust_domain=args.trust_domain, cert_ttl=args.cert_ttl))
