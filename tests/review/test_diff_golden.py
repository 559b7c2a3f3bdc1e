"""`meshward diff` on pairs of real git revisions: what each change does to each proxy, grouped by the document
that caused it, against golden reports (`pytest --update-golden` rewrites them; read the diff)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from review_repos import BASE, POLICY, RULES, SERVICES, Repo, git, routing

from meshward import cli

GOLDEN = Path(__file__).parent / "golden"

SIDECAR = """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client, namespace: shop}
spec:
  workloadSelector: {labels: {app: client}}
  egress:
  - hosts: [./reviews.shop.svc.cluster.local]
"""

CASES: dict[str, Mapping[str, str | None]] = {
    "route-weights": {f"{POLICY}/routing.yaml": routing(50, 50)},
    "new-subset": {f"{POLICY}/rules.yaml": RULES + "  - {name: v3, labels: {version: v3}}\n"},
    "deleted-service": {f"{POLICY}/services.yaml": SERVICES.split("---\n")[0]},
    "sidecar-scope": {f"{POLICY}/sidecar.yaml": SIDECAR},
    # every document moves down a line and a file outside the policy changes: no proxy's config changes
    "nothing-changed": {f"{POLICY}/routing.yaml": "# the reviews canary\n" + routing(), "README.md": "docs\n"},
}
EXIT = {"nothing-changed": 0}


def _diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["diff", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _check(text: str, golden: Path, update: bool) -> None:
    if update:
        golden.write_text(text)
    assert golden.exists(), f"no golden {golden.name}: run pytest --update-golden"
    assert text == golden.read_text()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.commit(BASE, "base")
    git(repo.root, "tag", "base")
    return repo


@pytest.mark.parametrize("case", sorted(CASES))
def test_diff_between_two_revisions(case: str, repo: Repo, capsys: pytest.CaptureFixture[str],
                                    update_golden: bool) -> None:
    repo.commit(CASES[case], case)
    code, out, err = _diff(capsys, str(repo.root / POLICY), "--from", "base", "--to", "HEAD")
    assert (code, err) == (EXIT.get(case, 1), "")
    _check(out, GOLDEN / f"{case}.txt", update_golden)


def test_markdown_for_a_pull_request(repo: Repo, capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    repo.commit(CASES["route-weights"], "weights")
    code, out, _ = _diff(capsys, str(repo.root / POLICY), "--from", "base", "--to", "HEAD", "--format", "markdown")
    assert code == 1
    _check(out, GOLDEN / "route-weights.md", update_golden)
