"""Istio's own bookinfo samples (../shared/corpus/istio-bookinfo): real policy nobody here wrote.

Each networking file is an alternative meant to be applied on its own, so each is validated together with
platform/kube/bookinfo.yaml and networking/destination-rule-all.yaml, as Istio's docs apply them. None may give an
error, except where `istioctl analyze` gives one too (listed below with the reason).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler import diagnostics, pipeline

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "istio-bookinfo"
NETWORKING = sorted((CORPUS / "networking").glob("*.yaml")) if CORPUS.is_dir() else []

# Errors Istio's analyzer reports as well (IST0101 ReferencedResourceNotFound): the sample assumes objects that
# live outside bookinfo.
ISTIO_ALSO_ERRS = {
    "certmanager-gateway.yaml": {"MW0302"},  # cert-manager-resolver.istio-system: a cert-manager Service
}


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/istio-bookinfo is not present")
@pytest.mark.parametrize("path", NETWORKING, ids=lambda p: p.name)
def test_networking_file_with_bookinfo_has_no_error(path: Path) -> None:
    checked = pipeline.check([CORPUS / "platform" / "kube" / "bookinfo.yaml",
                              CORPUS / "networking" / "destination-rule-all.yaml", path])
    errors = {d.code for d in checked.diagnostics if d.severity is diagnostics.Severity.ERROR}
    assert errors == ISTIO_ALSO_ERRS.get(path.name, set()), [d.render() for d in checked.diagnostics]
    assert len(checked.resources) >= 4


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/istio-bookinfo is not present")
def test_unmodeled_kubernetes_kinds_are_skipped_with_a_warning() -> None:
    checked = pipeline.check([CORPUS / "platform" / "kube" / "bookinfo.yaml"])
    skipped = [d for d in checked.diagnostics if d.code == "MW0005"]
    assert skipped and all(d.severity is diagnostics.Severity.WARNING for d in skipped)
    assert "ServiceAccount" in " ".join(d.message for d in skipped)
    assert "Deployment" not in " ".join(d.message for d in skipped)  # read for its pods (compiler.api.workloads)
    assert checked.ok
