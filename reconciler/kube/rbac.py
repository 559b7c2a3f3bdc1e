"""The Kubernetes API calls `meshward serve` makes, as RBAC rules, each with the flag that makes it needed.

Why it exists: the ClusterRole of deploy/rbac.yaml must grant exactly what the code calls (least privilege, and no
403 at run time), and docs/operations.md's table says which flag needs which rule. `tests/deploy/test_rbac.py`
checks this list both ways: against the kinds the registry watches and the TokenReview the CA makes under the
Deployment's flags, against the requests a real `serve` sends to the loopback API server, and against the
ClusterRole. A new watch or call is added here, in deploy/rbac.yaml and in docs/operations.md's table together.
"""

from __future__ import annotations

import dataclasses

from reconciler.kube import istio_kinds

WATCH = ("list", "watch")  # the registry lists, then watches from the list's resourceVersion; it never gets one


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    group: str  # "" for the core API group
    resource: str
    verbs: tuple[str, ...]
    needed_by: str  # the flags of `meshward serve` that make the call
    kind: str = ""  # the kind the registry watches with it (registry.WatchedKind.kind); "" for another call


RULES = (
    Rule("", "services", WATCH, "--kubeconfig", kind="Service"),
    Rule("discovery.k8s.io", "endpointslices", WATCH, "--kubeconfig", kind="EndpointSlice"),
    Rule("", "pods", WATCH, "--kubeconfig (proxies' labels, service accounts, IPs, readiness)", kind="Pod"),
    Rule("", "namespaces", WATCH, "--kubeconfig (injection labels)", kind="Namespace"),
    Rule("", "secrets", WATCH, "--kubeconfig (Gateway credentialName)", kind="Secret"),
    Rule("authentication.k8s.io", "tokenreviews", ("create",), "--kubeconfig with --ca-dir"),
    # drift: Istio resources applied in the cluster that Git does not hold (reconciler/kube/istio_kinds.py)
    *(Rule(group, plural, WATCH, "--kubeconfig (drift)", kind=kind) for group, _, kind, plural in istio_kinds.KINDS),
)

