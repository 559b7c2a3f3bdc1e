"""The verdict on one policy tree: `validate` rejects it with located errors, or every proxy compiles and real
Envoy accepts every proxy's static bootstrap. Anything else is a finding.

Envoy validation is most of the cost (one process per bootstrap, 0.1-0.3 s), so bootstraps already judged in this
run are not judged again (a mutation changes one or two proxies' config; the others are byte-identical to ones seen
before), and new ones are validated in parallel. For that, every tree is written to the same directory: emitted
metadata names each resource's source file, so a tree in a new temporary directory would make every bootstrap new.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import traceback
from pathlib import Path

import mutations
from pki import pem_pair, point_files_at

from compiler import build as build_mod
from compiler.emit import bootstrap_static

_ENVOY_TIMEOUT_S = 60
_PARALLEL = max(2, os.cpu_count() or 2)


@dataclasses.dataclass(frozen=True)
class Verdict:
    kind: str  # "rejected" | "accepted" | and the findings: "unlocated" | "crash" | "envoy-refused"
    detail: str = ""

    @property
    def finding(self) -> bool:
        return self.kind not in ("rejected", "accepted")


@dataclasses.dataclass
class Judge:
    envoy: str
    pem_dir: Path
    workdir: Path  # the trees are written to workdir/tree, one after the other
    seen: dict[str, str] = dataclasses.field(default_factory=dict)  # bootstrap hash -> "" or Envoy's refusal
    baselines: dict[str, Verdict] = dataclasses.field(default_factory=dict)  # tree name -> its verdict, unmutated
    envoy_runs: int = 0

    def baseline(self, tree: str) -> Verdict:
        if tree not in self.baselines:
            self.baselines[tree] = self.tree(mutations.trees()[tree])
        return self.baselines[tree]

    def tree(self, files: dict[str, bytes]) -> Verdict:
        root = self.workdir / "tree"
        shutil.rmtree(root, ignore_errors=True)
        mutations.write(files, root)
        try:
            result = build_mod.build([root])
            if not result.ok:
                return _rejected(build_mod.errors(result))
            bootstraps = self.compile(result)
        except Exception:  # noqa: BLE001 - a traceback on validated input is the finding
            return Verdict("crash", traceback.format_exc(limit=-4))
        return self.verdict(bootstraps)

    def compile(self, result: build_mod.Build) -> dict[str, str]:
        """Each proxy's ADS snapshot (it must not raise) and its static bootstrap, as JSON by node id. The SDS
        secrets a `credentialName` refers to come from the cluster in `serve`; here every one is a generated
        certificate (a `-cacert` one a CA bundle). The mesh identity comes from the agent's socket (`sds-grpc`),
        which `--mode validate` does not open."""
        out = {}
        for proxy in result.proxies():
            cfg = build_mod.proxy_config(result, proxy.node_id)
            secrets = {name: _secret(name) for name in cfg.secret_references()}
            build_mod.snapshot_for(result, proxy.node_id, secrets=secrets)
            boot = bootstrap_static.static_bootstrap(build_mod.with_secrets(cfg, secrets))
            point_files_at(boot, self.pem_dir)
            out[proxy.node_id] = json.dumps(boot, sort_keys=True)
        return out

    def verdict(self, bootstraps: dict[str, str]) -> Verdict:
        """Envoy's verdict on bootstraps (JSON by node id): "accepted", or "envoy-refused" with its reasons."""
        keys = {node: hashlib.sha256(text.encode()).hexdigest() for node, text in bootstraps.items()}
        new = sorted({keys[n]: n for n in keys if keys[n] not in self.seen}.items())
        with tempfile.TemporaryDirectory(prefix="mw-envoy-") as tmp:
            for start in range(0, len(new), _PARALLEL):
                self._validate(new[start:start + _PARALLEL], bootstraps, Path(tmp))
        refused = [f"{node}: {self.seen[key]}" for node, key in sorted(keys.items()) if self.seen[key]]
        return Verdict("envoy-refused", "\n".join(refused)) if refused else Verdict("accepted")

    def _validate(self, batch: list[tuple[str, str]], bootstraps: dict[str, str], tmp: Path) -> None:
        runs = []
        for i, (key, node) in enumerate(batch):
            path = tmp / f"bootstrap-{i}.json"
            path.write_text(bootstraps[node], encoding="utf-8")
            runs.append((key, subprocess.Popen([self.envoy, "--mode", "validate", "-c", str(path), "--log-level",
                                                "critical"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                               text=True, errors="replace")))
        try:
            for key, run in runs:
                output, _ = run.communicate(timeout=_ENVOY_TIMEOUT_S)
                self.envoy_runs += 1
                self.seen[key] = "" if run.returncode == 0 else _last_error(output)
        finally:
            for _, run in runs:
                if run.poll() is None:
                    run.kill()
                    run.wait(timeout=10)


def compiled(judge: Judge, files: dict[str, bytes]) -> dict[str, str]:
    """Each proxy's static bootstrap (JSON by node id) for a tree that must validate."""
    root = judge.workdir / "tree"
    shutil.rmtree(root, ignore_errors=True)
    mutations.write(files, root)
    result = build_mod.build([root])
    assert result.ok, [d.render() for d in build_mod.errors(result)]
    return judge.compile(result)


def _secret(name: str) -> build_mod.Secret:
    cert, key = pem_pair()
    if name.endswith(build_mod.credential_ca_secret("")):
        return build_mod.Secret(name, trusted_ca=cert)
    return build_mod.Secret(name, certificate_chain=cert, private_key=key)


def _rejected(errors: list[build_mod.Diagnostic]) -> Verdict:
    unlocated = [d.render() for d in errors if not d.position.file or d.position.line < 1]
    internal = [d.render() for d in errors if d.code == "MW0404"]
    if internal:
        return Verdict("crash", "\n".join(internal))
    if unlocated or not errors:
        return Verdict("unlocated", "\n".join(unlocated))
    return Verdict("rejected", errors[0].render())


def _last_error(output: str) -> str:
    """Envoy's reason, without the start-up noise around it."""
    lines = [line for line in output.splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-600:]
