"""The proof: every emitter case, as a static bootstrap, is accepted by the real Envoy; one of them runs."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from pathlib import Path

import emit_factories as f
import pytest

from compiler import model as m
from compiler.emit import bootstrap_static
from reconciler.ops import envoy_process

pytestmark = pytest.mark.envoy


def _config(case: str, tmp_path: Path) -> m.ProxyConfig:
    if case == "upstream_tls" or case == "file_secrets":
        cert, key = f.write_pem_files(tmp_path)
        cfg = f.upstream_tls(cert, key) if case == "upstream_tls" else f.file_secrets()
        if case == "file_secrets":  # point the file secrets at real files, and use them from a cluster
            cfg = dataclasses.replace(
                cfg,
                secrets=tuple(
                    dataclasses.replace(
                        s,
                        certificate_chain=cert if s.certificate_chain else "",
                        private_key=key if s.private_key else "",
                        trusted_ca=cert if s.trusted_ca else "",
                    )
                    for s in cfg.secrets
                ),
                clusters=(
                    f.eds_cluster(
                        tls=m.UpstreamTls(m.TlsMode.MUTUAL, credential_secret="files", ca_secret="ca-files")
                    ),
                ),
            )
        return cfg
    return f.CASES[case]()


def _write(cfg: m.ProxyConfig, path: Path, admin_port: int = 0) -> Path:
    path.write_text(json.dumps(bootstrap_static.static_bootstrap(cfg, admin_port=admin_port), indent=1))
    return path


@pytest.mark.parametrize("case", sorted(f.CASES))
def test_envoy_accepts_static_bootstrap(case: str, envoy_bin: str, tmp_path: Path) -> None:
    result = f.envoy_validate(envoy_bin, _write(_config(case, tmp_path), tmp_path / "bootstrap.json"))
    assert result.returncode == 0, result.stderr[-3000:]


def test_envoy_rejects_a_broken_bootstrap(envoy_bin: str, tmp_path: Path) -> None:
    """The check above can fail: an RE2-invalid regex passes the emitter but not Envoy."""
    bad = f.http_proxy(
        m.Route("bad", m.RouteMatch(m.StringMatch(m.MatchKind.REGEX, "(")), f.forward(f.CLUSTER))
    )
    result = f.envoy_validate(envoy_bin, _write(bad, tmp_path / "bootstrap.json"))
    assert result.returncode != 0 and "missing )" in result.stderr


def test_envoy_runs_static_bootstrap_and_answers(envoy_bin: str, tmp_path: Path) -> None:
    """A direct response route served by a running Envoy from a static bootstrap."""
    port, admin = envoy_process.free_port(), envoy_process.free_port()
    route = m.Route("teapot", m.RouteMatch(), m.DirectResponse(418, "short and stout"))
    cfg = f.http_proxy(route)
    cfg = dataclasses.replace(
        cfg,
        listeners=(dataclasses.replace(f.http_listener(port=port), address="127.0.0.1"),),
        route_configs=(
            dataclasses.replace(
                cfg.route_configs[0], virtual_hosts=(m.VirtualHost("all", "*", port, ("*",), (route,)),)
            ),
        ),
    )
    path = _write(cfg, tmp_path / "bootstrap.json", admin_port=admin)
    with envoy_process.running(path, log=tmp_path / "envoy.log", envoy_bin=envoy_bin,
                               extra_args=("--disable-hot-restart",)) as proc:
        proc.wait_ready(admin)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/anything", timeout=5)
        assert err.value.code == 418 and err.value.read() == b"short and stout"
