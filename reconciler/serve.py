"""`meshward serve`: wires the git source, the compiler, the cluster feed (Kubernetes registry and credentials, when
asked for), the snapshot cache, the ADS server and the admin HTTP server into one process. Everything here is
assembly; each part documents its own behaviour."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import enum
import functools
import logging
import os
import signal
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config

from compiler import build as build_mod
from reconciler import compose, gcpause, jwks, loop
from reconciler.git import auth, source, webhook
from reconciler.identity import ca, ca_server, certs
from reconciler.inject import sidecar, webhook_server
from reconciler.kube import ca_secret, cluster, istio_kinds, registry, token_review
from reconciler.ops import admin, drift, exposure, mesh_view, metrics
from reconciler.ops import status as status_mod
from reconciler.xds import ads, ads_guard, ads_status, cache, config_budget, xds_node

log = logging.getLogger(__name__)

SECRET_ENV = "MESHWARD_WEBHOOK_SECRET"
POD_NAMESPACE_ENV = "POD_NAMESPACE"  # the downward API's metadata.namespace, as istiod's deployment sets it
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
IN_CLUSTER = "in-cluster"  # `--kubeconfig in-cluster`: the pod's service account, as istiod and Argo CD run


class ServeError(Exception):
    """A configuration problem found while starting: printed, exit code 2."""


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    repo: str
    repo_credentials: auth.Credentials | None = None  # else any in `repo` (moved out of the URL git sees)
    branch: str = "main"
    path: str = ""
    rev: str | None = None
    poll_interval: float = 30.0
    xds_address: str = "127.0.0.1:15010"
    admin_address: str = "127.0.0.1:15014"
    admin_allowed_hosts: tuple[str, ...] = ()  # Host names the admin port answers beside IPs and localhost
    workdir: Path | None = None
    webhook_secret: bytes | None = None
    verify_signatures: bool = False
    allowed_signers: Path | None = None
    max_connection_age: float | None = None
    shutdown_grace: float = 5.0  # seconds streams get to finish the response in flight when stopped
    client_caps: ads_guard.ClientCaps = dataclasses.field(default_factory=ads_guard.ClientCaps)
    # Per proxy, serialized. A gateway of 80,000 ServiceEntries (24 MB of clusters) took Envoy to 3.5 GB and
    # was never ACKed; a sidecar that sees all of the 10,000-service benchmark mesh is 22 MB (scope it).
    max_config_bytes: int = 16 << 20
    kubeconfig: str | None = None  # a kubeconfig file, or IN_CLUSTER; None: no cluster is watched
    kube_context: str | None = None
    kube_host: str | None = None  # an API server URL without auth (`kubectl proxy`, tests); wins over kubeconfig
    credentials_dir: Path | None = None
    credentials_poll: float = 2.0
    strict: bool = False  # flagged errors (analyzer findings about configs Pilot serves) block a commit too
    ca_dir: Path | None = None  # the CA's cacerts directory; None: no CA is served
    ca_address: str = "127.0.0.1:15012"
    # the CA issues identities in it, and the compiler writes and matches principals and SANs with it (and aliases)
    trust_domain: str = "cluster.local"
    trust_domain_aliases: tuple[str, ...] = ()
    jwks: jwks.FetchOptions = dataclasses.field(default_factory=jwks.FetchOptions)
    ca_dns_names: tuple[str, ...] = ()  # more names the CA's (and mTLS ADS's) certificate carries (a Service's)
    ca_secret: str | None = None  # cluster mode: the CA's files in this Secret of `namespace` instead of ca_dir
    namespace: str | None = None  # the reconciler's own namespace; None: the pod's (POD_NAMESPACE, service account)
    xds_tls: bool = False  # ADS over mTLS with certificates of the mesh CA, each stream limited to its namespace
    inject_webhook: bool = False  # serve the sidecar injection webhook (HTTPS)
    inject_address: str = "127.0.0.1:15017"
    inject_cert: Path | None = None  # with inject_key: the webhook's certificate; else the CA makes one
    inject_key: Path | None = None
    inject: sidecar.Options = dataclasses.field(default_factory=sidecar.Options)  # what the webhook injects
    prometheus_url: str | None = None  # the mesh page's request rates per edge come from it


def registry_config(config: ServeConfig) -> registry.RegistryConfig | None:
    """Services, EndpointSlices, Pods, Namespaces and Secrets of the cluster, and Istio's resources for drift, when
    one is configured."""
    if config.kubeconfig is None and config.kube_host is None:
        return None
    in_cluster = config.kubeconfig == IN_CLUSTER
    kubeconfig = Path(config.kubeconfig) if config.kubeconfig and not in_cluster else None
    return registry.RegistryConfig(host=config.kube_host, in_cluster=in_cluster, kubeconfig=kubeconfig,
                                   context=config.kube_context,
                                   kinds=(*registry.DEFAULT_KINDS, registry.SECRETS, *istio_kinds.WATCHED))


def _feed(config: ServeConfig) -> cluster.ClusterFeed | None:
    kube = registry_config(config)
    if kube is None and config.credentials_dir is None:
        return None
    feed_config = cluster.FeedConfig(credentials_dir=config.credentials_dir, credentials_poll=config.credentials_poll)
    try:
        return cluster.ClusterFeed(feed_config, registry_config=kube)
    except (kubernetes.config.ConfigException, OSError, ValueError) as err:
        raise ServeError(f"cannot use the cluster configuration ({config.kubeconfig}): {err}") from err


def _ca(config: ServeConfig) -> ca_server.CaServer | None:
    """The mesh CA, from --ca-dir or (cluster mode) --ca-secret; None when neither is given."""
    if config.ca_dir is None and config.ca_secret is None:
        return None
    if config.ca_dir is not None and config.ca_secret is not None:
        raise ServeError("--ca-dir and --ca-secret are two places for one CA: give one")
    kube = registry_config(config)
    options = ca.CaOptions(trust_domain=config.trust_domain)
    try:
        client = None if kube is None else kubernetes.client.ApiClient(registry.client_configuration(kube))
        reviewer = None if client is None else token_review.TokenReviewer(client)
        if config.ca_secret is not None:
            if client is None or reviewer is None:
                raise ServeError("--ca-secret keeps the CA in a Kubernetes Secret: it needs --kubeconfig")
            namespace = _own_namespace(config)
            authority = ca_secret.load_or_create(kubernetes.client.CoreV1Api(client), namespace, config.ca_secret,
                                                 options)
            return ca_server.CaServer(ca_server.CaService(authority, reviewer))
        assert config.ca_dir is not None
        authority = ca.load_or_create(config.ca_dir, options)
        authenticate = ca_server.local_authenticator(config.ca_dir, others=reviewer)
        return ca_server.CaServer(ca_server.CaService(authority, authenticate))
    except (ca.CaError, OSError, ValueError, TypeError) as err:
        where = f"the CA directory {config.ca_dir}" if config.ca_dir else f"the CA secret {config.ca_secret}"
        raise ServeError(f"cannot use {where}: {err}") from err
    except kubernetes.config.ConfigException as err:
        raise ServeError(f"cannot use the cluster configuration ({config.kubeconfig}): {err}") from err


def _injector(config: ServeConfig, authority: ca_server.CaServer | None) -> webhook_server.InjectServer | None:
    if not config.inject_webhook:
        return None
    cert, key = config.inject_cert, config.inject_key
    if (cert is None) != (key is None):
        raise ServeError("--inject-webhook-cert and --inject-webhook-key go together")
    if cert is None and authority is None:
        raise ServeError("--inject-webhook needs a certificate: --ca-dir (the mesh CA makes one), or "
                         "--inject-webhook-cert and --inject-webhook-key")

    def context() -> ssl.SSLContext:
        try:
            if cert is not None and key is not None:
                return webhook_server.file_context(cert, key)
            assert authority is not None
            hosts = ca_server.serving_hosts(config.inject_address, config.ca_dns_names)
            return webhook_server.pem_context(*authority.service.authority.serving_certificate(hosts))
        except (ssl.SSLError, OSError) as err:
            raise ServeError(f"cannot use the injection webhook's certificate: {err}") from err

    host, port = _split(config.inject_address)
    return webhook_server.InjectServer(config.inject, host=host, port=port, context=context)


def _own_namespace(config: ServeConfig) -> str:
    """The reconciler's namespace: --namespace, else the pod's (the downward API's POD_NAMESPACE, then the
    service account's namespace file of an in-cluster pod)."""
    namespace = config.namespace or os.environ.get(POD_NAMESPACE_ENV)
    if not namespace and config.kubeconfig == IN_CLUSTER:
        with contextlib.suppress(OSError):
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    if not namespace:
        raise ServeError("--ca-secret: which namespace is the reconciler's? give --namespace")
    return namespace


def _xds_tls(config: ServeConfig, authority: ca.CertificateAuthority | None) -> ads.MutualTls | None:
    """mTLS for ADS: a server certificate the mesh CA issues for every name the xDS address is reached by, and
    the CA's trust bundle for the clients' (agents') certificates."""
    if not config.xds_tls:
        return None
    if authority is None:
        raise ServeError("--xds-tls authenticates proxies with certificates of the mesh CA: give --ca-dir or "
                         "--ca-secret")
    key, chain = authority.serving_certificate(ca_server.serving_hosts(config.xds_address, config.ca_dns_names),
                                               name="meshward-xds")
    roots = b"".join(certs.pem(root).encode() for root in authority.trust_bundle)
    return ads.MutualTls(key, chain, roots, config.trust_domain)


def _check_exposure(config: ServeConfig) -> None:
    """Private keys (Gateway credentials) never go over plain ADS to an address other machines reach."""
    refusal = exposure.plain_keys_refusal(
        xds_host=config.xds_address.rpartition(":")[0], xds_tls=config.xds_tls,
        credentials=[*(["--credentials-dir"] if config.credentials_dir else []),
                     *(["the cluster's Secrets (--kubeconfig)"] if registry_config(config) else [])])
    if refusal is not None:
        raise ServeError(refusal)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


class Server:
    """One reconciler: start() binds the ports, run() follows the repo until stop()."""

    def __init__(self, config: ServeConfig, workdir: Path) -> None:
        _check_exposure(config)
        self.config = config
        self.metrics = metrics.Metrics()
        self.cache = cache.SnapshotCache()
        self.ca = _ca(config)
        self.ca_port = 0
        self.ads = ads.AdsServer(self.cache, observer=metrics.XdsObserver(self.metrics),
                                 options=ads.AdsOptions(max_connection_age=config.max_connection_age,
                                                        caps=config.client_caps,
                                                        tls=_xds_tls(config, self.ca.service.authority if self.ca else None)))
        self.source = source.GitSource(source.SourceConfig(
            url=config.repo, workdir=workdir, branch=config.branch, rev=config.rev, credentials=config.repo_credentials,
            verify_signatures=config.verify_signatures, allowed_signers=config.allowed_signers))
        self.cluster = _feed(config)
        # builds (the loop's worker thread) and snapshots (the cache's) pause the cyclic GC through one counter
        pause = gcpause.GcPause()
        self.compiler = compiler = compose.Compiler(
            build_mod.ParseCache(), repo_path=config.path, pause=pause, strict=config.strict,
            keys=jwks.KeySets(jwks.Fetcher(config.jwks)),
            trust=build_mod.TrustDomain(config.trust_domain, config.trust_domain_aliases),
            mesh_identity=config.ca_dir is not None)  # a mesh with a CA is a mesh of agents: Istio's mTLS default
        self.keys = compiler.keys
        self.loop = loop.Reconciler(self.source, load=compiler.load, build=compiler.build,
                                    snapshot_for=functools.partial(
                                        resolve, pause=pause, budget=config_budget.ConfigBudget(config.max_config_bytes)),
                                    publisher=self.cache, metrics=self.metrics, cluster=self.cluster,
                                    config=loop.LoopConfig(poll_interval=config.poll_interval, path=config.path))
        if self.cluster is not None:
            self.cluster.on_change = self.loop.cluster_changed
        hook = webhook.WebhookHandler(config.webhook_secret, lambda: self.source.followed_refs, self.loop.trigger)
        host, port = _split(config.admin_address)
        self.metrics.before_render(self._refresh_metrics)
        self.mesh_view = mesh_view.MeshView(config.prometheus_url)
        self.admin = admin.AdminServer(status=self._status, metrics=self.metrics, webhook=hook,
                                       proxies=self._proxies, config=self._config_of, describe=self._describe_of,
                                       mesh=self._mesh, host=host, port=port,
                                       allowed_hosts=config.admin_allowed_hosts)
        self.xds_port = 0
        self.injector = _injector(config, self.ca)

    def _status(self) -> status_mod.Status:
        """The loop's status with what only the live server knows: the proxies rejecting their config and those
        that ACKed it, and the cluster part as of now rather than as of the last compile."""
        proxies = self.ads.status()
        current = dataclasses.replace(self.loop.status, nacks=status_mod.nacks_of(proxies),
                                      acked_by=status_mod.acked_by(proxies, self._commit_of),
                                      drift=self._drift(proxies))
        if self.cluster is None:
            return current
        return dataclasses.replace(current, cluster=self.cluster.describe())

    def _drift(self, proxies: list[ads_status.ProxyStatus]) -> drift.Drift | None:
        """The served commit against the live mesh (None before the first publish): the proxies' sync state, and
        with a cluster its Services, EndpointSlices and Istio resources against the commit's documents."""
        serving, tree = self.loop.status.serving, self.loop.served_documents
        if serving is None or not isinstance(tree, compose.Tree):
            return None
        git = [drift.GitDocument(d.data, d.file, d.line) for d in tree.documents if isinstance(d.data, Mapping)]
        kube = self.cluster.registry if self.cluster is not None else None
        objects = ({k.kind: kube.objects(k.kind) for k in kube.config.kinds if k.kind != registry.SECRETS.kind}
                   if kube is not None else None)
        states = [drift.ProxyState(p.node_id, p.state, self._commit_of(p.snapshot_version or "")) for p in proxies]
        return drift.compare(serving.sha, git, objects, states)

    def _commit_of(self, snapshot_version: str) -> str | None:
        origin = self.loop.origin(snapshot_version)
        return origin.commit if origin is not None else None

    def _refresh_metrics(self) -> None:
        """At scrape time: the result and the NACK gauge as /status says them now."""
        current = self._status()
        self.metrics.set_result(current.last_result)
        self.metrics.set_nacks(current.nacks)
        self.metrics.set_drift(current.drift.counts() if current.drift is not None else {})

    def _proxies(self) -> list[dict[str, Any]]:
        """The ADS server's per-stream status, each with the commit and cluster state its snapshot came from."""
        out = []
        for proxy in self.ads.status():
            entry: dict[str, Any] = plain(proxy)
            origin = self.loop.origin(entry.get("snapshot_version") or "")
            entry["commit"] = origin.commit if origin else None
            entry["cluster_generation"] = origin.cluster_generation if origin else None
            out.append(entry)
        return out

    async def _config_of(self, node_id: str) -> Any:
        """What the server holds for a proxy (`meshward proxy-config`): the snapshot the cache serves it, dumped on a
        worker thread (a whole mesh's dump is no quicker than its compile). LookupError: an unknown proxy (the admin
        API answers 404); admin.Unavailable: nothing to serve it (503)."""
        try:
            snapshot = await self.cache.held(xds_node.NodeInfo(id=node_id))
        except LookupError as err:
            raise LookupError(f"unknown proxy {node_id}: {err}") from None
        except (build_mod.InconsistentSnapshot, cache.KeepPrevious) as err:  # e.g. its credentialName is nowhere
            raise admin.Unavailable(f"not served: {err}") from None
        if snapshot is None:
            raise admin.Unavailable("no good commit published yet")
        return await asyncio.to_thread(lambda: redact(build_mod.config_dump(snapshot)))

    async def _describe_of(self, node_id: str) -> Any:
        """Which configs of the served revision apply to a proxy, and why (`meshward describe`)."""
        served = self.loop.served
        if served is None:
            raise admin.Unavailable("no good commit published yet")
        try:
            described = await asyncio.to_thread(build_mod.describe, served.build, node_id)
        except LookupError as err:
            raise LookupError(f"unknown proxy {node_id}: {err}") from None
        return described.to_json()

    async def _mesh(self) -> dict[str, Any]:
        """The mesh page's data: the served revision's routing, the proxies' sync state, rates (mesh_view.py). The
        loop's status with the live NACKs (what the result and errors depend on), without /status's drift."""
        served, proxies = self.loop.served, self.ads.status()
        current = dataclasses.replace(self.loop.status, nacks=status_mod.nacks_of(proxies))
        return await self.mesh_view.to_json(served.build if served is not None else None, current, proxies,
                                            self._commit_of)

    async def start(self) -> None:
        self.xds_port = await self.ads.start(self.config.xds_address)
        await self.admin.start()
        if self.ca is not None:
            self.ca_port = await self.ca.start(self.config.ca_address, extra_hosts=self.config.ca_dns_names)
        if self.injector is not None:
            await self.injector.start()
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.start)

    async def run(self) -> None:
        refresher = asyncio.ensure_future(self._refresh_keys())
        try:
            await self.loop.run()
        finally:
            refresher.cancel()

    async def _refresh_keys(self) -> None:
        """jwksUri key sets fetched again when due; a changed one recompiles the serving commit. Wakes at least
        every retry interval, so that a key set a new commit asked for is retried in time."""
        while True:
            await asyncio.sleep(min(max(self.keys.next_due(), 0.05), self.config.jwks.retry_interval))
            if await asyncio.to_thread(self.keys.refresh):
                self.loop.inputs_changed()

    async def stop(self) -> None:
        self.loop.stop()
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.stop)
        await self.admin.close()
        if self.injector is not None:
            await self.injector.close()
        if self.ca is not None:
            await self.ca.stop(grace=1.0)
        await self.ads.stop(grace=self.config.shutdown_grace)
        self.source.close()


def plain(value: Any) -> Any:
    """Dataclasses, mappings and enums as JSON-ready Python."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def redact(doc: Any) -> Any:
    """Private keys out of a config dump, as Envoy's own /config_dump does: the admin port is not a key store."""
    if isinstance(doc, dict):
        return {k: ({"inline_string": "[redacted]"} if k in ("private_key", "privateKey") else redact(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [redact(v) for v in doc]
    return doc


def resolve(compiled: compose.Compiled, node: xds_node.NodeInfo, *, pause: gcpause.GcPause,
            budget: config_budget.ConfigBudget) -> object:
    """The cache's resolver: the proxy's snapshot, with the SDS secrets (Gateway credentialName) of its namespace
    from the same cluster state; a referenced secret that is nowhere raises build.InconsistentSnapshot, and a
    snapshot over the size budget config_budget.ConfigTooLarge, so that proxy keeps its last snapshot and /status
    names it."""
    with pause.paused():
        snapshot = build_mod.snapshot_for(compiled.build, node, secrets=compiled.secrets_for(node),
                                          unready=compiled.unready)
    budget.check(snapshot)
    return snapshot


def _secret(args: argparse.Namespace) -> bytes | None:
    if args.webhook_secret_file:
        return Path(args.webhook_secret_file).read_bytes().strip()
    value = os.environ.get(SECRET_ENV)
    return value.encode() if value else None


def _repo_credentials(args: argparse.Namespace) -> auth.Credentials | None:
    return auth.from_file(Path(args.repo_credentials_file)) if args.repo_credentials_file else auth.from_env()


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(
        repo=args.repo, repo_credentials=_repo_credentials(args), branch=args.branch, path="" if args.path in (".", "") else args.path, rev=args.rev,
        poll_interval=args.poll_interval, xds_address=args.xds_address, admin_address=args.admin_address,
        admin_allowed_hosts=tuple(args.admin_allowed_host),
        workdir=Path(args.workdir) if args.workdir else None, webhook_secret=_secret(args),
        verify_signatures=args.verify_signatures,
        allowed_signers=Path(args.allowed_signers) if args.allowed_signers else None,
        max_connection_age=args.max_connection_age or None, shutdown_grace=args.shutdown_grace,
        max_config_bytes=args.max_config_bytes,
        client_caps=ads_guard.ClientCaps(
            max_streams_per_peer=args.max_streams_per_peer, max_node_id_bytes=args.max_node_id_bytes,
            max_resource_names=args.max_resource_names, responses_per_second=args.max_responses_per_second,
            response_burst=args.response_burst),
        kubeconfig=args.kubeconfig,
        kube_context=args.kube_context,
        credentials_dir=Path(args.credentials_dir) if args.credentials_dir else None,
        credentials_poll=args.credentials_poll_interval, strict=args.strict,
        ca_dir=Path(args.ca_dir) if args.ca_dir else None, ca_address=args.ca_address,
        trust_domain=args.trust_domain, trust_domain_aliases=tuple(args.trust_domain_alias),
        jwks=jwks.FetchOptions(ca_file=Path(args.jwks_ca_file) if args.jwks_ca_file else None,
                               refresh_interval=args.jwks_refresh_interval),
        ca_dns_names=tuple(args.ca_dns_name),
        inject_webhook=args.inject_webhook, inject_address=args.inject_webhook_address,
        inject_cert=Path(args.inject_webhook_cert) if args.inject_webhook_cert else None,
        inject_key=Path(args.inject_webhook_key) if args.inject_webhook_key else None,
        inject=sidecar.Options(xds_address=args.inject_xds_address, ca_address=args.inject_ca_address,
                               proxy_image=args.inject_proxy_image, agent_image=args.inject_agent_image,
                               trust_domain=args.trust_domain, xds_tls=args.xds_tls),
        ca_secret=args.ca_secret, namespace=args.namespace, xds_tls=args.xds_tls,
        prometheus_url=args.prometheus_url)


async def serve(config: ServeConfig) -> None:
    """Run until SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C); either drains the ADS streams and
    returns normally, so the temporary clone is removed and the process exits 0."""
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    with contextlib.ExitStack() as stack:
        workdir = config.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="meshward-")))
        server = Server(config, workdir)
        # gRPC takes an empty host as every interface; the admin server binds it to loopback (`_split`).
        for warning in exposure.bind_warnings(xds_host=config.xds_address.rpartition(":")[0],
                                              admin_host=_split(config.admin_address)[0], xds_tls=config.xds_tls):
            log.warning("%s", warning)
        await server.start()
        # the bound ports, not the configured ones: port 0 takes a free port
        log.info("xDS on %s:%d, admin on http://%s:%d", config.xds_address.rpartition(":")[0], server.xds_port,
                 _split(config.admin_address)[0], server.admin.port)
        runner = asyncio.create_task(server.run())
        await stopping.wait()
        log.info("stopping: draining ADS streams (up to %ss)", config.shutdown_grace)
        await server.stop()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verify_signatures and not args.allowed_signers:
        print("meshward serve: --verify-signatures needs --allowed-signers FILE")
        return 2
    try:
        config = config_from_args(args)
    except OSError as err:
        print(f"meshward serve: cannot read {err.filename}: {err.strerror or err}")
        return 2
    except ValueError as err:
        print(f"meshward serve: --repo-credentials-file: {err}")
        return 2
    try:
        asyncio.run(serve(config))
    except ServeError as err:
        print(f"meshward serve: {err}")
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed: nothing to drain yet
        pass
    log.info("stopped")
    return 0
