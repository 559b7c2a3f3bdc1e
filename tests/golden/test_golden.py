"""Golden cases for the whole pipeline: policy YAML in, per-proxy config dumps and rendered diagnostics out.

Each case is `cases/<case>/input/*.yaml` with `cases/<case>/expected/<node-id>.json` (the config dump of every
proxy the tree defines, sorted keys) and `expected/diagnostics.txt`. A broken policy is a case whose expected
output is its diagnostics. `pytest tests/golden --update-golden` rewrites the expected files and removes stale
ones; review the diff. Every expected proxy config is also turned into a static bootstrap that the real Envoy
must accept.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from compiler.emit import bootstrap_static, consistency, dump

# Until stage 2 lands the pipeline cannot run; say so instead of failing every case.
if not hasattr(pytest.importorskip("compiler.translate"), "proxy_config"):
    pytest.skip("compiler.translate has no proxy_config yet", allow_module_level=True)

from compiler import build as build_mod  # after the skip: it imports compiler.translate

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "input").is_dir()) if CASES_DIR.is_dir() else []
DIAGNOSTICS = "diagnostics.txt"


def safe_name(node_id: str) -> str:
    """A file name for a node id, as `meshward compile --all` names them (`~` and `/` become `_`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", node_id)


def _build(case: str, monkeypatch: pytest.MonkeyPatch) -> build_mod.Build:
    """Built from inside the input directory, so that file names in diagnostics and metadata are relative."""
    monkeypatch.chdir(CASES_DIR / case / "input")
    return build_mod.build(["."])


def render(case: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every expected file of a case, by file name, as this code produces it."""
    result = _build(case, monkeypatch)
    out = {DIAGNOSTICS: "".join(d.render() + "\n" for d in result.diagnostics)}
    for proxy in result.proxies():
        snap = build_mod.snapshot_for(result, proxy.node_id)
        assert consistency.check(snap) == [], f"{case}: inconsistent snapshot for {proxy.node_id}"
        out[safe_name(proxy.node_id) + ".json"] = dump.dumps(snap)
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
    for name, text in produced.items():
        assert have[name] == text, (
            f"{case}/expected/{name} differs; run pytest --update-golden and review the diff"
        )


@pytest.mark.envoy
@pytest.mark.parametrize("case", CASES)
def test_golden_configs_pass_envoy_validate(
    case: str, envoy_bin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _build(case, monkeypatch)
    for proxy in result.proxies():
        cfg = build_mod.proxy_config(result, proxy.node_id)
        path = tmp_path / (safe_name(proxy.node_id) + ".json")
        path.write_text(json.dumps(bootstrap_static.static_bootstrap(cfg), indent=1), encoding="utf-8")
        run = subprocess.run(
            [envoy_bin, "--mode", "validate", "-c", str(path), "--log-level", "warn"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, f"{case} {proxy.node_id}: {run.stderr[-3000:]}"


def test_there_are_golden_cases() -> None:
    assert CASES, f"no golden cases under {CASES_DIR}"


def test_update_rewrites_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "gone.json").write_text("{}")
    (tmp_path / DIAGNOSTICS).write_text("old\n")
    _write(tmp_path, {DIAGNOSTICS: "", "node.json": "{}\n"})
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {DIAGNOSTICS: "", "node.json": "{}\n"}
