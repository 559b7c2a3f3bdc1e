"""Istio's own resources in the cluster, watched read-only for drift (reconciler.ops.drift), never compiled.

Why: Git is the source of truth for mesh policy; a VirtualService or AuthorizationPolicy applied with kubectl (or
left behind by istiod) is config meshward does not serve, and a team migrating from istiod needs the list of what is
left. They are listed and watched like the registry's kinds (reconciler.kube.registry) but kept out of the
compiler's documents, and optional: a cluster without Istio's CRDs (404) or a reconciler without RBAC for them (403)
sees none rather than holding back the Services and endpoints it does need.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import kubernetes.client

from reconciler.kube.registry import WatchedKind

# (group, version, kind, plural): the kinds of Istio's networking and security APIs, at the version Istio serves
# them (EnvoyFilter and ProxyConfig have no v1).
KINDS = (
    ("networking.istio.io", "v1", "VirtualService", "virtualservices"),
    ("networking.istio.io", "v1", "DestinationRule", "destinationrules"),
    ("networking.istio.io", "v1", "Gateway", "gateways"),
    ("networking.istio.io", "v1", "ServiceEntry", "serviceentries"),
    ("networking.istio.io", "v1", "Sidecar", "sidecars"),
    ("networking.istio.io", "v1", "WorkloadEntry", "workloadentries"),
    ("networking.istio.io", "v1", "WorkloadGroup", "workloadgroups"),
    ("networking.istio.io", "v1alpha3", "EnvoyFilter", "envoyfilters"),
    ("networking.istio.io", "v1beta1", "ProxyConfig", "proxyconfigs"),
    ("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"),
    ("security.istio.io", "v1", "PeerAuthentication", "peerauthentications"),
    ("security.istio.io", "v1", "RequestAuthentication", "requestauthentications"),
)


def _lister(group: str, version: str, plural: str) -> Callable[[kubernetes.client.ApiClient], Callable[..., Any]]:
    def lister(api: kubernetes.client.ApiClient) -> Callable[..., Any]:
        objects = kubernetes.client.CustomObjectsApi(api)
        return functools.partial(objects.list_cluster_custom_object, group, version, plural)

    return lister


WATCHED = tuple(WatchedKind(kind, f"{group}/{version}", _lister(group, version, plural), compiler_input=False,
                            optional=True)
                for group, version, kind, plural in KINDS)
