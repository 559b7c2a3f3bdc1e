"""The Kubernetes service registry: Services, EndpointSlices, Pods and Namespaces watched from a cluster, as compiler
documents.

Why it exists: in a cluster the service registry (which hosts exist, which pod IPs back them) lives in the API
server, not in Git. The compiler stays pure, so this module does the I/O and hands it plain manifest-shaped dicts
(`documents()`), which the reconciler feeds to the compiler next to the policy files, and says when they changed.

How (the informer / kopf pattern): per kind, list, then watch from the list's resourceVersion with bookmarks on;
a watch that ends (server timeout) resumes from the last resourceVersion seen; 410 Gone (an ERROR event or an
ApiException) means our resourceVersion was compacted away, so re-list and replace that kind's objects; a broken
connection resumes the watch after a bounded, jittered exponential backoff (a 410 then tells us to re-list).
The official client is synchronous, so each kind runs in a thread of its own; `stop()` ends them promptly by
cutting the live watch socket (`Watch.stop()`), and the server-side `timeoutSeconds` bounds what that misses.

Notifications are debounced (an EndpointSlice storm during a rollout is one recompile) and held back until every
kind has been listed once, so the compiler never sees Services without their endpoints. Changes that do not alter
the manifest shape (status, resourceVersion, managed fields; of a Pod, all but its IPs, phase and readiness) do not
notify at all.

Secrets (for Gateway `credentialName`, as Istio's credentials controller) are watched the same way but kept out of
`documents()`; only their certificate keys are stored, and their content is never logged.
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from reconciler.kube import debounce, registry_store
from reconciler.kube.debounce import ChangeCallback
from reconciler.kube.registry_store import Key, manifest, source_name

log = logging.getLogger(__name__)

Lister = Callable[[kubernetes.client.ApiClient], Callable[..., Any]]

# Errors that mean "the connection failed", not "the server said no": resume the watch after a backoff.
_CONNECTION_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


@dataclasses.dataclass(frozen=True, slots=True)
class WatchedKind:
    """One resource type to list and watch cluster-wide."""

    kind: str
    api_version: str
    lister: Lister  # ApiClient -> the client's `list_*_for_all_namespaces` (or custom-object list) function
    field_selector: str | None = None  # server-side filter, on the list and on every watch
    compiler_input: bool = True  # a compiler document (Service, ...); False: kept aside (Secrets)
    optional: bool = False  # 403 Forbidden on the first list counts as empty (as 404 does for every kind)


SERVICES = WatchedKind("Service", "v1",
                       lambda api: kubernetes.client.CoreV1Api(api).list_service_for_all_namespaces)
ENDPOINT_SLICES = WatchedKind(
    "EndpointSlice", "discovery.k8s.io/v1",
    lambda api: kubernetes.client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces)
# A proxy's labels, service account and IP are its Pod's; a namespace's labels say whether its pods are injected.
PODS = WatchedKind("Pod", "v1", lambda api: kubernetes.client.CoreV1Api(api).list_pod_for_all_namespaces)
NAMESPACES = WatchedKind("Namespace", "v1", lambda api: kubernetes.client.CoreV1Api(api).list_namespace)
DEFAULT_KINDS = (SERVICES, ENDPOINT_SLICES, PODS, NAMESPACES)
# Istio's credentials controller watches every Secret but the two kinds that are big, numerous and never TLS
# credentials (pilot/pkg/credentials/kube: Helm release records and service-account tokens); the content decides.
SECRETS = WatchedKind(
    "Secret", "v1", lambda api: kubernetes.client.CoreV1Api(api).list_secret_for_all_namespaces,
    field_selector="type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token,type!=istio.io/ca-root",
    compiler_input=False,
    optional=True)


def istio_kind(kind: str, plural: str, version: str = "v1") -> WatchedKind:
    """An Istio networking CRD (e.g. `istio_kind("VirtualService", "virtualservices")`) via CustomObjectsApi."""
    group = "networking.istio.io"

    def lister(api: kubernetes.client.ApiClient) -> Callable[..., Any]:
        objects = kubernetes.client.CustomObjectsApi(api)
        return functools.partial(objects.list_cluster_custom_object, group, version, plural)

    return WatchedKind(kind, f"{group}/{version}", lister)


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with equal jitter: never zero (no hot loop), never above `maximum`."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        cap = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return rng.uniform(cap / 2, cap)


@dataclasses.dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Where the cluster is (first match wins: `host`, `in_cluster`, kubeconfig) and how to watch it."""

    host: str | None = None  # explicit API server URL, no auth (tests, `kubectl proxy`)
    in_cluster: bool = False  # the pod's service account
    kubeconfig: Path | None = None  # None: $KUBECONFIG or ~/.kube/config
    context: str | None = None
    kinds: tuple[WatchedKind, ...] = DEFAULT_KINDS
    watch_timeout: int = 60  # server-side timeoutSeconds of one watch request; also bounds a missed stop()
    connect_timeout: float = 5.0
    list_timeout: float = 30.0
    backoff: Backoff = Backoff()
    debounce: float = 0.2  # quiet time before a change is announced
    debounce_max: float = 2.0  # announce at the latest this long after the first unannounced change


@dataclasses.dataclass(frozen=True, slots=True)
class KindStatus:
    """What one kind's watcher has done so far: for /status, logs and tests."""

    kind: str
    synced: bool
    resource_version: str | None
    objects: int
    lists: int
    watches: int
    errors: int
    last_error: str


def client_configuration(config: RegistryConfig) -> kubernetes.client.Configuration:
    """A private client Configuration: the client library's global default is never touched."""
    conf = kubernetes.client.Configuration(host=config.host)
    if config.host is None and config.in_cluster:
        kubernetes.config.load_incluster_config(client_configuration=conf)
    elif config.host is None:
        path = str(config.kubeconfig) if config.kubeconfig is not None else None
        kubernetes.config.load_kube_config(config_file=path, context=config.context, client_configuration=conf)
    conf.retries = 0  # the watch loop retries, with backoff; urllib3's own immediate retries would hammer
    # one live watch per kind, each holding a connection: a smaller pool would discard and reopen them
    conf.connection_pool_maxsize = max(conf.connection_pool_maxsize, len(config.kinds) + 2)
    return conf


def asyncio_notifier(loop: Any, event: Any) -> ChangeCallback:
    """A change callback that sets an `asyncio.Event` on `loop` from the registry's threads."""

    def notify(_generation: int) -> None:
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    return notify


class _Gone(Exception):
    """Our resourceVersion was compacted away (HTTP 410): re-list."""


class _KindWatcher:
    """List-then-watch loop for one kind, in its own thread."""

    def __init__(self, kind: WatchedKind, registry: Registry) -> None:
        self.kind = kind
        self._registry = registry
        self._config = registry.config
        self._api = registry.api_client
        self._list_fn = kind.lister(registry.api_client)
        self._watch = kubernetes.watch.Watch()
        self._rng = random.Random()
        self.resource_version: str | None = None
        self.synced = False
        self.lists = self.watches = self.errors = 0
        self.last_error = ""
        self.thread = threading.Thread(target=self._run, name=f"registry-{kind.kind}", daemon=True)

    @property
    def _selector(self) -> dict[str, str]:
        return {"field_selector": self.kind.field_selector} if self.kind.field_selector else {}

    def interrupt(self) -> None:
        """Cut the live watch connection, if any (safe from any thread, any number of times)."""
        self._watch.stop()

    def status(self) -> KindStatus:
        return KindStatus(self.kind.kind, self.synced, self.resource_version,
                          self._registry.store.count(self.kind.kind), self.lists, self.watches, self.errors,
                          self.last_error)

    def _run(self) -> None:
        attempt = 0
        while not self._registry.stopping.is_set():
            try:
                if self.resource_version is None:
                    self._list()
                self._stream()
                attempt = 0
            except _Gone as exc:
                log.info("%s watch expired (%s): re-listing", self.kind.kind, exc)
                self.resource_version = None
                if attempt:  # 410 again right after a re-list: back off rather than spin
                    self._registry.stopping.wait(self._config.backoff.delay(attempt, self._rng))
                attempt += 1
            except Exception as exc:  # noqa: BLE001 - a dead thread would leave the registry silently stale
                if self._registry.stopping.is_set():
                    return
                self._failed(exc)
                self._registry.stopping.wait(self._config.backoff.delay(attempt, self._rng))
                attempt += 1

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        status = exc.status if isinstance(exc, ApiException) else None
        absent = status == 404 or (status == 403 and self.kind.optional)
        if absent and not self.synced:
            # Not served (an optional CRD not installed) or not readable by us (no RBAC for Secrets): empty, so the
            # other kinds are not held back; the watcher keeps trying after its backoff.
            log.warning("%s cannot be listed (HTTP %s); treating it as empty", self.kind.kind, status)
            self._registry.listed(self, {})
        elif absent and self.kind.optional:  # still absent: said once above, not at every retry
            log.debug("%s still cannot be listed (%s)", self.kind.kind, self.last_error)
            self.resource_version = None
        elif isinstance(exc, _CONNECTION_ERRORS):
            log.warning("%s watch connection failed (%s); resuming from %s after backoff", self.kind.kind,
                        self.last_error, self.resource_version)
        else:
            log.warning("%s list/watch failed (%s); re-listing after backoff", self.kind.kind, self.last_error,
                        exc_info=not isinstance(exc, ApiException))
            self.resource_version = None

    def _list(self) -> None:
        result = self._list_fn(_request_timeout=(self._config.connect_timeout, self._config.list_timeout),
                               **self._selector)
        body = self._api.sanitize_for_serialization(result)
        self.lists += 1
        docs = {}
        for item in body.get("items") or []:
            doc = manifest(self.kind.kind, self.kind.api_version, item)
            docs[_key(doc)] = doc
        self._registry.listed(self, docs)
        self.resource_version = str(body["metadata"]["resourceVersion"])
        log.debug("%s listed: %d objects at resourceVersion %s", self.kind.kind, len(docs),
                  self.resource_version)

    def _stream(self) -> None:
        """One watch request from `resource_version`, until the server ends it (timeout) or we stop."""
        assert self.resource_version is not None
        self.watches += 1
        timeout = self._config.watch_timeout
        events = self._watch.stream(
            self._list_fn, resource_version=self.resource_version, allow_watch_bookmarks=True,
            timeout_seconds=timeout, _request_timeout=(self._config.connect_timeout, timeout + 10),
            **self._selector)
        try:
            for event in events:
                if self._registry.stopping.is_set():
                    return
                if isinstance(event, dict):  # the client yields None for a line that is not JSON
                    self._on_event(event)
        except ApiException as exc:
            if exc.status == 410:
                raise _Gone(exc.reason) from exc
            raise
        finally:
            events.close()

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "BOOKMARK":  # nothing changed, but our resourceVersion may move on (survives compaction)
            meta = (event.get("raw_object") or {}).get("metadata") or {}
            if meta.get("resourceVersion"):
                self.resource_version = str(meta["resourceVersion"])
            return
        obj = self._api.sanitize_for_serialization(event["object"])
        doc = manifest(self.kind.kind, self.kind.api_version, obj)
        if kind in ("ADDED", "MODIFIED"):
            changed = self._registry.store.put(_key(doc), doc)
        elif kind == "DELETED":
            changed = self._registry.store.remove(_key(doc))
        else:
            log.warning("%s watch: unexpected event type %r ignored", self.kind.kind, kind)
            return
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = str(rv)
        if changed:
            self._registry.changed()


def _key(doc: dict[str, Any]) -> Key:
    meta = doc["metadata"]
    return (doc["kind"], meta.get("namespace", ""), meta["name"])


class Registry:
    """Watches the configured kinds; `documents()` is the current state, `on_change` fires (debounced) on edits.

    `on_change(generation)` runs on the registry's notifier thread, only after every kind has been listed once;
    use `asyncio_notifier(loop, event)` to wake an asyncio loop.
    """

    def __init__(self, config: RegistryConfig, *, on_change: ChangeCallback | None = None) -> None:
        self.config = config
        self.store = registry_store.Store()
        self.stopping = threading.Event()
        self.api_client = kubernetes.client.ApiClient(client_configuration(config))
        self._debouncer = debounce.Debouncer(config.debounce, config.debounce_max, on_change)
        self._watchers = [_KindWatcher(kind, self) for kind in config.kinds]
        self._synced = threading.Event()
        self._started = False

    def start(self) -> None:
        if self._started:
            raise RuntimeError("registry already started")
        self._started = True
        self._debouncer.thread.start()
        for watcher in self._watchers:
            watcher.thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every thread within `timeout`; True when all of them ended."""
        self.stopping.set()
        self._debouncer.stop()
        deadline = time.monotonic() + timeout
        threads = [w.thread for w in self._watchers] + [self._debouncer.thread]
        while self._started and any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            for watcher in self._watchers:  # again and again: a watch opened after the first call is cut too
                watcher.interrupt()
            for thread in threads:
                thread.join(timeout=0.02)
        stopped = not any(t.is_alive() for t in threads)
        if not stopped:
            log.warning("registry threads still running after %.1fs: %s", timeout,
                        [t.name for t in threads if t.is_alive()])
        self.api_client.close()
        return stopped

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def synced(self) -> bool:
        """Every kind has been listed at least once."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    @property
    def generation(self) -> int:
        """The last announced change generation (0 before the first announcement)."""
        return self._debouncer.announced

    def wait_changed(self, after: int, timeout: float) -> int:
        """Block until a generation above `after` is announced (or timeout); returns the latest announced."""
        return self._debouncer.wait_announced(after, timeout)

    def documents(self) -> list[dict[str, Any]]:
        """The watched compiler inputs as manifest-shaped dicts, sorted by (kind, namespace, name); copies.
        Kinds that are not compiler input (Secrets) are left out: see `objects`."""
        inputs = frozenset(k.kind for k in self.config.kinds if k.compiler_input)
        return [doc for _, doc in self.store.snapshot(inputs)]

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """The watched objects of one kind (e.g. "Secret"), manifest-shaped, sorted; copies."""
        return [doc for _, doc in self.store.snapshot(frozenset({kind}))]

    def named_documents(self) -> list[tuple[str, dict[str, Any]]]:
        """`documents()` paired with their `source_name` (`k8s:Service/ns/name`)."""
        return [(source_name(doc), doc) for doc in self.documents()]

    def status(self) -> list[KindStatus]:
        return [w.status() for w in self._watchers]

    # ---- called by the watchers
    def listed(self, watcher: _KindWatcher, docs: dict[Key, dict[str, Any]]) -> None:
        changed = self.store.replace_kind(watcher.kind.kind, docs)
        first = not watcher.synced
        watcher.synced = True
        if first and all(w.synced for w in self._watchers):
            self._synced.set()
            self._debouncer.mark()  # the first complete view is always announced
        elif changed:
            self.changed()

    def changed(self) -> None:
        if self._synced.is_set():
            self._debouncer.mark()
