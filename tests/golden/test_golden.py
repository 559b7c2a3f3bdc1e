"""Golden cases for the whole pipeline, one expected file per stage: policy YAML in; rendered diagnostics, each
proxy's model (the IR translate hands to emit) and its Envoy resources per type out.

Each case is `cases/<case>/input/*.yaml` with, in `cases/<case>/expected/`, `diagnostics.txt` and per proxy the
tree defines `<node-id>.model.json` (compiler.model_dump) and `<node-id>.<type>.json` for each xDS type it has
(listeners, routes, clusters, endpoints, secrets: the sections of its config dump, compiler.emit.dump), and
`<node-id>.stats.json` where Telemetry metrics change the bootstrap's stats settings. A case may
instead (or as well) name trees kept elsewhere in `cases/<case>/source.txt`, one path per line relative to the
project root (the policies-example tree, Istio's bookinfo samples in ../shared), so that nobody keeps a copy of them
here. A broken policy is a case whose expected output is its diagnostics. `pytest tests/golden --update-golden`
rewrites the expected files and removes stale ones; review the diff. Every proxy config is also turned into a
static bootstrap that the real Envoy must accept.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from pki import point_files_at, write_pem_files

from compiler import build as build_mod
from compiler import model, model_dump
from compiler.emit import bootstrap_static, dump
from meshxds import consistency

CASES_DIR = Path(__file__).parent / "cases"
ROOT = Path(__file__).resolve().parents[2]  # the project root: source.txt paths are relative to it
SOURCE = "source.txt"
CASES = (
    sorted(p.name for p in CASES_DIR.iterdir() if (p / "input").is_dir() or (p / SOURCE).is_file())
    if CASES_DIR.is_dir()
    else []
)
DIAGNOSTICS = "diagnostics.txt"
BUILD_INPUTS = "build-inputs.json"


def safe_name(node_id: str) -> str:
    """A file name for a node id, as `meshward compile --all` names them (`~` and `/` become `_`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", node_id)


def sources(case_dir: Path) -> list[str]:
    """The paths a case's source.txt names (relative to the project root; `#` starts a comment)."""
    listing = case_dir / SOURCE
    if not listing.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in listing.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def build_inputs(case_dir: Path) -> build_mod.BuildInputs:
    """The case's build-inputs.json, when it has one: the trust domain and aliases, the key sets as the reconciler
    would have fetched them (`{"jwks": {URI: {"keys": TEXT} or {"error": WHY}}}`, and `"discovery"` the same by
    issuer, for rules found through OpenID discovery), and `meshIdentity` (the proxies run agents, as under `serve
    --ca-dir`)."""
    path = case_dir / BUILD_INPUTS
    if not path.is_file():
        return build_mod.BuildInputs()
    given = json.loads(path.read_text(encoding="utf-8"))
    trust = build_mod.TrustDomain(given.get("trustDomain", "cluster.local"), tuple(given.get("trustDomainAliases", ())))
    fetched: dict[build_mod.KeySource, build_mod.FetchedJwks] = {
        uri: build_mod.FetchedJwks(**got) for uri, got in given.get("jwks", {}).items()}
    fetched |= {build_mod.Discovery(issuer): build_mod.FetchedJwks(**got)
                for issuer, got in given.get("discovery", {}).items()}
    return build_mod.BuildInputs(trust, fetched, mesh_identity=bool(given.get("meshIdentity", False)))


def _build(case: str, monkeypatch: pytest.MonkeyPatch) -> build_mod.Build:
    """Built from inside the input directory, so that file names in diagnostics and metadata are relative; a
    case with a source.txt is built from the project root, its own input/ (if any) after the named paths."""
    named = sources(CASES_DIR / case)
    if not named:
        monkeypatch.chdir(CASES_DIR / case / "input")
        return build_mod.build(["."], inputs=build_inputs(CASES_DIR / case))
    missing = [p for p in named if not (ROOT / p).exists()]
    if missing:
        if all(Path(p).parts[:2] == ("..", "shared") for p in missing):
            pytest.skip(f"{case}: {missing[0]} is not present (../shared is missing)")
        pytest.fail(f"{case}/{SOURCE} names paths that do not exist: {missing}")
    monkeypatch.chdir(ROOT)
    own = CASES_DIR / case / "input"
    return build_mod.build([*named, *([str(own.relative_to(ROOT))] if own.is_dir() else [])])


def stand_in_secrets(cfg: model.ProxyConfig) -> dict[str, model.Secret]:
    """The SDS secrets a proxy names that no tree defines (credentialName, served by the reconciler from the
    cluster or --credentials-dir), as file secrets under /credentials/<name>/: the expected files show where they
    plug in, and the Envoy check points the files at a generated certificate as it does the policy's own files."""
    cas = {t.ca_secret for t in (*(c.tls for li in cfg.listeners for c in li.filter_chains),
                                 *(c.tls for c in cfg.clusters)) if t is not None and t.ca_secret}
    have = {s.name for s in cfg.secrets}
    return {n: model.Secret(n, trusted_ca=f"/credentials/{n}/ca.crt", inline=False) if n in cas else
            model.Secret(n, certificate_chain=f"/credentials/{n}/tls.crt",
                         private_key=f"/credentials/{n}/tls.key", inline=False)
            for n in sorted(cfg.secret_references() - have)}


def render(case: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every expected file of a case, by file name, as this code produces it."""
    result = _build(case, monkeypatch)
    out = {DIAGNOSTICS: "".join(d.render() + "\n" for d in result.diagnostics)}
    for proxy in result.proxies():
        name = safe_name(proxy.node_id)
        cfg = build_mod.proxy_config(result, proxy.node_id)
        out[f"{name}.model.json"] = model_dump.dumps(cfg)
        if cfg.metrics != model.Metrics():  # the bootstrap's stats settings, where Telemetry metrics change them
            out[f"{name}.stats.json"] = json.dumps(build_mod.metrics_stats_config(
                workload=proxy.name, namespace=proxy.namespace, metrics=cfg.metrics), indent=2, sort_keys=True) + "\n"
        snap = build_mod.snapshot_for(result, proxy.node_id, secrets=stand_in_secrets(cfg))
        assert consistency.check(snap) == [], f"{case}: inconsistent snapshot for {proxy.node_id}"
        out.update((f"{name}.{kind}.json", text) for kind, text in dump.dumps_by_type(snap).items())
    return out


def _write(expected_dir: Path, produced: dict[str, str]) -> None:
    expected_dir.mkdir(exist_ok=True)
    for stale in expected_dir.iterdir():
        if stale.name not in produced:
            stale.unlink()
    for name, text in produced.items():
        (expected_dir / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, update_golden: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    produced = render(case, monkeypatch)
    expected_dir = CASES_DIR / case / "expected"
    if update_golden:
        _write(expected_dir, produced)
    have = (
        {p.name: p.read_text(encoding="utf-8") for p in expected_dir.iterdir()}
        if expected_dir.is_dir()
        else {}
    )
    assert sorted(have) == sorted(produced), (
        "expected files differ; run pytest --update-golden and review the diff"
    )
    changed = [name for name, text in produced.items() if have[name] != text]  # all of them: which stages moved
    assert not changed, f"{case}/expected: {', '.join(changed)} differ; run pytest --update-golden and review the diff"



@pytest.fixture(scope="module")
def pem_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA certificate and its key, as files (cert.pem, key.pem)."""
    directory = tmp_path_factory.mktemp("pem")
    write_pem_files(directory)
    return directory


@pytest.mark.envoy
@pytest.mark.parametrize("case", CASES)
def test_golden_configs_pass_envoy_validate(
    case: str, envoy_bin: str, pem_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _build(case, monkeypatch)
    runs: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        for proxy in result.proxies():  # one Envoy per proxy, all at once: validation is mostly start-up time
            cfg = build_mod.proxy_config(result, proxy.node_id)
            boot = bootstrap_static.static_bootstrap(build_mod.with_secrets(cfg, stand_in_secrets(cfg)))
            point_files_at(boot, pem_dir)
            path = tmp_path / (safe_name(proxy.node_id) + ".json")
            path.write_text(json.dumps(boot, indent=1), encoding="utf-8")
            runs.append(
                (
                    proxy.node_id,
                    subprocess.Popen(
                        [envoy_bin, "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
            )
        for node_id, run in runs:
            _, stderr = run.communicate(timeout=60)
            assert run.returncode == 0, f"{case} {node_id}: {stderr[-3000:]}"
    finally:
        for _, run in runs:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=10)


def test_there_are_golden_cases() -> None:
    assert CASES, f"no golden cases under {CASES_DIR}"


def test_update_rewrites_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "gone.json").write_text("{}")
    (tmp_path / DIAGNOSTICS).write_text("old\n")
    _write(tmp_path, {DIAGNOSTICS: "", "node.json": "{}\n"})
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {DIAGNOSTICS: "", "node.json": "{}\n"}


def test_file_references_are_pointed_at_generated_pem(tmp_path: Path) -> None:
    boot = {
        "secrets": [
            {
                "tls_certificate": {
                    "certificate_chain": {"filename": "/etc/certs/cert.pem"},
                    "private_key": {"filename": "/etc/certs/key.pem"},
                }
            },
            {"validation_context": {"trusted_ca": {"filename": "/etc/certs/ca.pem"}}},
        ]
    }
    point_files_at(boot, tmp_path)
    tls = boot["secrets"][0]["tls_certificate"]
    assert tls["certificate_chain"]["filename"] == str(tmp_path / "cert.pem")
    assert tls["private_key"]["filename"] == str(tmp_path / "key.pem")
    assert boot["secrets"][1]["validation_context"]["trusted_ca"]["filename"] == str(tmp_path / "cert.pem")


def test_source_listing_ignores_comments_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / SOURCE).write_text("# the tree\npolicies-example  # in place\n\n")
    assert sources(tmp_path) == ["policies-example"]
    assert sources(tmp_path / "elsewhere") == []
