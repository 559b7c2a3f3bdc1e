"""The cluster side of a compile: service registry documents and TLS credentials, as one numbered state.

Why it exists: a commit alone no longer decides what proxies get once meshward watches a cluster (`--kubeconfig`)
or a credentials directory (`--credentials-dir`): the same commit compiles differently when endpoints move or a
certificate is rotated. The loop therefore compiles (commit, cluster state) pairs, and this module hands it the
cluster state as an immutable value with a generation number, so /status can say exactly which pair is served.

Every change (registry announcement, credentials directory rewritten) is debounced, then a new `ClusterState` is
built from the sources in one go and `on_change` is called (from a worker thread; the loop makes it thread-safe).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from compiler import build
from compiler.build import Document, Secret
from reconciler.kube import credentials, debounce, registry

log = logging.getLogger(__name__)

_EMPTY: Mapping[str, Secret] = MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class ClusterState:
    """One view of the cluster: what the compiler gets beside the commit, and the credentials for SDS."""

    generation: int = 0  # 0: nothing read yet; bumped by every announced change
    synced: bool = True  # False until every source was read once (no partial registry is ever compiled)
    documents: tuple[Document, ...] = ()  # Services, EndpointSlices, Pods, Namespaces, without endpoint readiness
    unready: frozenset[str] = frozenset()  # addresses of endpoints that are not ready (build.split_readiness)
    kube_secrets: Mapping[str, credentials.Credentials] = dataclasses.field(default_factory=dict)  # by namespace
    file_secrets: credentials.Credentials = dataclasses.field(default_factory=credentials.Credentials)
    watches: tuple[registry.KindStatus, ...] = ()  # the registry's per-kind list/watch state

    def secrets_for(self, namespace: str | None) -> Mapping[str, Secret]:
        """What a proxy of `namespace` may be sent: the credentials directory, overridden by the Secrets of the
        proxy's own namespace (Istio resolves credentialName in the gateway's namespace)."""
        kube = self.kube_secrets.get(namespace or "")
        if kube is None:
            return self.file_secrets.secrets or _EMPTY
        return {**self.file_secrets.secrets, **kube.secrets}

    @property
    def problems(self) -> tuple[str, ...]:
        """Refused credentials, one line each, naming the secret."""
        kube = (p for ns in sorted(self.kube_secrets) for p in self.kube_secrets[ns].problems)
        return (*self.file_secrets.problems, *kube)

    def to_json(self) -> dict[str, Any]:
        return {"generation": self.generation, "synced": self.synced, "documents": len(self.documents),
                "unready": len(self.unready),
                "secrets": sorted({*self.file_secrets.secrets,
                                   *(f"{ns}/{n}" for ns, c in self.kube_secrets.items() for n in c.secrets)}),
                "problems": list(self.problems),
                "watches": _watches_json(self.watches)}


def _watches_json(watches: tuple[registry.KindStatus, ...]) -> list[dict[str, Any]]:
    return [{"kind": w.kind, "synced": w.synced, "objects": w.objects, "errors": w.errors, "lastError": w.last_error}
            for w in watches]


@dataclasses.dataclass(frozen=True, slots=True)
class FeedConfig:
    credentials_dir: Path | None = None
    credentials_poll: float = 2.0  # seconds between looks at the credentials directory
    debounce: float = 0.2
    debounce_max: float = 2.0


class ClusterFeed:
    """Owns the registry (optional) and the credentials directory poller (optional); `state()` is the latest."""

    def __init__(self, config: FeedConfig, *, registry_config: registry.RegistryConfig | None = None,
                 on_change: Callable[[ClusterState], None] | None = None) -> None:
        self.config = config
        self.on_change = on_change  # settable after construction (the loop that listens is built later)
        self._cond = threading.Condition()
        self._state = ClusterState(synced=False)  # until every source was read once: the loop waits for it
        self._stopping = threading.Event()
        self._debouncer = debounce.Debouncer(config.debounce, config.debounce_max, self._refresh,
                                             name="cluster-notify")
        self.registry = (registry.Registry(registry_config, on_change=lambda _gen: self._debouncer.mark())
                         if registry_config is not None else None)
        self._poller = threading.Thread(target=self._poll_dir, name="credentials-poll", daemon=True)

    def state(self) -> ClusterState:
        with self._cond:
            return self._state

    def start(self) -> None:
        self._debouncer.thread.start()
        if self.registry is not None:
            self.registry.start()  # its first complete listing is announced: that builds generation 1
        if self.config.credentials_dir is not None:
            self._poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self.registry is not None:
            self.registry.stop(timeout)
        self._debouncer.stop()
        with self._cond:
            self._cond.notify_all()
        for thread in (self._poller, self._debouncer.thread):
            if thread.is_alive():
                thread.join(timeout)

    def describe(self) -> dict[str, Any]:
        """The latest state for /status, with the registry's watch state as of now (a watch failing after the
        last change shows up here, not only at the next change)."""
        described = self.state().to_json()
        if self.registry is not None:
            described["watches"] = _watches_json(tuple(self.registry.status()))
        return described

    def wait_generation(self, after: int, timeout: float) -> int:
        """Block until a state newer than `after` is built (or timeout); returns the current generation."""
        with self._cond:
            self._cond.wait_for(lambda: self._state.generation > after or self._stopping.is_set(), timeout)
            return self._state.generation

    def _poll_dir(self) -> None:
        assert self.config.credentials_dir is not None
        seen: object = None
        while not self._stopping.is_set():
            current = credentials.fingerprint(self.config.credentials_dir)
            if current != seen:
                seen = current
                self._debouncer.mark()
            self._stopping.wait(self.config.credentials_poll)

    def _refresh(self, _generation: int) -> None:
        """On the debouncer's thread: read every source once, publish the new state, tell the loop."""
        state = self._read()
        with self._cond:
            state = dataclasses.replace(state, generation=self._state.generation + 1)
            self._state = state
            self._cond.notify_all()
        log.info("cluster state generation %d: %d registry documents, %d credential problems", state.generation,
                 len(state.documents), len(state.problems))
        if self.on_change is not None:
            self.on_change(state)

    def _read(self) -> ClusterState:
        documents: tuple[Document, ...] = ()
        unready: frozenset[str] = frozenset()
        kube: Mapping[str, credentials.Credentials] = {}
        synced = True
        watches: tuple[registry.KindStatus, ...] = ()
        if self.registry is not None:
            synced = self.registry.synced
            watches = tuple(self.registry.status())
            documents, unready = build.split_readiness([Document(file=name, index=0, line=1, data=doc)
                                                        for name, doc in self.registry.named_documents()])
            kube = credentials.from_kube(self.registry.objects("Secret"))
        files = (credentials.load_dir(self.config.credentials_dir) if self.config.credentials_dir is not None
                 else credentials.Credentials())
        return ClusterState(synced=synced, documents=documents, unready=unready, kube_secrets=kube,
                            file_secrets=files, watches=watches)
