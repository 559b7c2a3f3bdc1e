"""reconciler/kube/rbac.py, the list of API calls serve makes, checked both ways: against the kinds the registry
watches and the TokenReview the CA makes under the Deployment's flags, and against deploy/'s ClusterRole.
(test_deployment_serve.py checks the ClusterRole against the requests a real serve sends.)"""

from __future__ import annotations

import manifests

from meshward import cli
from reconciler import serve
from reconciler.kube import rbac


def _deployed_config() -> serve.ServeConfig:
    return serve.config_from_args(cli._parser().parse_args(["serve", *manifests.serve_args()]))


def test_every_call_of_the_deployed_serve_has_a_rule_and_every_rule_a_call() -> None:
    config = _deployed_config()
    kube = serve.registry_config(config)
    assert kube is not None and kube.in_cluster
    watched = sorted(kind.kind for kind in kube.kinds)
    assert watched == sorted(rule.kind for rule in rbac.RULES if rule.kind)
    assert all(rule.verbs == rbac.WATCH for rule in rbac.RULES if rule.kind)
    calls = [rule.resource for rule in rbac.RULES if not rule.kind]
    token_review = config.ca_dir is not None  # serve._ca: with a cluster, the CA asks it about tokens
    assert calls == (["tokenreviews"] if token_review else [])


def test_the_cluster_role_grants_exactly_the_rules() -> None:
    role = manifests.one("ClusterRole")
    granted = sorted((g, r, tuple(rule["verbs"])) for rule in role["rules"] for g in rule["apiGroups"]
                     for r in rule["resources"])
    assert granted == sorted((rule.group, rule.resource, rule.verbs) for rule in rbac.RULES)
    binding = manifests.one("ClusterRoleBinding")
    account = manifests.one("ServiceAccount")["metadata"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                    "namespace": account["namespace"]}]
    assert manifests.pod_spec()["serviceAccountName"] == account["name"]
