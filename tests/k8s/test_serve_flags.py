"""The cluster flags of `meshward serve`: what they configure, and a cluster configuration that cannot be used is a
usage error (exit 2, one line naming it) before any port is bound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from meshward import cli
from reconciler import serve
from reconciler.kube import istio_kinds, registry


def args(*extra: str) -> serve.ServeConfig:
    return serve.config_from_args(cli._parser().parse_args(["serve", "--repo", "r", *extra]))


def test_without_cluster_flags_nothing_is_watched() -> None:
    config = args()
    assert config.kubeconfig is None and config.credentials_dir is None
    assert serve.registry_config(config) is None


def test_kubeconfig_file_context_and_credentials_dir(tmp_path: Path) -> None:
    config = args("--kubeconfig", str(tmp_path / "kc"), "--kube-context", "prod", "--credentials-dir",
                  str(tmp_path), "--credentials-poll-interval", "0.5")
    kube = serve.registry_config(config)
    assert kube is not None and kube.kubeconfig == tmp_path / "kc" and kube.context == "prod" and not kube.in_cluster
    # Istio's own kinds too, read-only and never compiled: drift's list of what Git does not hold
    assert [k.kind for k in kube.kinds] == ["Service", "EndpointSlice", "Pod", "Namespace", "Secret",
                                            *(k.kind for k in istio_kinds.WATCHED)]
    assert not any(k.compiler_input for k in istio_kinds.WATCHED) and all(k.optional for k in istio_kinds.WATCHED)
    assert registry.SECRETS.field_selector is not None and "service-account-token" in registry.SECRETS.field_selector
    assert config.credentials_dir == tmp_path and config.credentials_poll == 0.5


def test_in_cluster() -> None:
    kube = serve.registry_config(args("--kubeconfig", "in-cluster"))
    assert kube is not None and kube.in_cluster and kube.kubeconfig is None


def test_unusable_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "meshward", "serve", "--repo", str(tmp_path), "--kubeconfig",
                           str(tmp_path / "missing"), "--xds-address", "127.0.0.1:0", "--admin-address",
                           "127.0.0.1:0"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith("meshward serve: cannot use the cluster configuration") and "missing" in done.stdout
