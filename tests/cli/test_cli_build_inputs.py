"""The build's inputs on the command line: `--trust-domain` (and aliases) into the SANs and principals `compile`
writes and the principals `validate` checks; `--fetch-jwks` fetching jwksUris as serve does, offline builds giving
their rules Istio's fail-closed key set with warning MW0412."""

from __future__ import annotations

import json
from pathlib import Path

import jwks_server
import pytest
from jwks_server import Route

from meshward import cli

WEB = "sidecar~10.1.1.1~web.app~app.svc.cluster.local"
KEYS = '{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"a"}]}'


def _tree(path: Path, jwks_uri: str) -> Path:
    (path / "mesh.yaml").write_text(f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: app}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web, namespace: app}}
spec:
  address: 10.1.1.1
  serviceAccount: web
  labels: {{app: web, security.istio.io/tlsMode: istio}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: web, namespace: app}}
spec:
  rules: [{{from: [{{source: {{principals: [cluster.local/ns/app/sa/client, elsewhere/ns/app/sa/x]}}}}]}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: web, namespace: app}}
spec:
  jwtRules: [{{issuer: "https://issuer.example.com", jwksUri: "{jwks_uri}"}}]
""")
    return path


def test_trust_domain_reaches_sans_and_principals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = _tree(tmp_path, "https://127.0.0.1:1/jwks.json")
    assert cli.main(["compile", str(tree), "--node", WEB, "--trust-domain", "prod.example",
                     "--trust-domain-alias", "old.example"]) == 0
    out = capsys.readouterr()
    for expected in ("spiffe://prod.example/ns/app/sa/web", "spiffe://old.example/ns/app/sa/web",
                     "spiffe://prod.example/ns/app/sa/client", "spiffe://old.example/ns/app/sa/client"):
        assert expected in out.out
    assert "spiffe://cluster.local/" not in out.out
    assert "warning MW0413" in out.err and "warning MW0412" in out.err and "not fetched" in out.err


def test_validate_reads_principals_against_the_trust_domain(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    tree = _tree(tmp_path, "https://127.0.0.1:1/jwks.json")
    assert cli.main(["validate", str(tree), "--trust-domain", "prod.example", "--trust-domain-alias",
                     "elsewhere"]) == 0
    assert "MW0413" not in capsys.readouterr().out  # elsewhere is an alias now; nothing fetched, nothing said
    assert cli.main(["validate", str(tree), "--failure-threshold", "warning"]) == 1
    assert 'warning MW0413: spec.rules[0].from[0].source.principals[1]: principal "elsewhere/ns/app/sa/x"' in \
        capsys.readouterr().out


def test_a_trust_domain_that_is_no_dns_name_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["compile", ".", "--all", "--trust-domain", "no/slash"])
    assert exc.value.code == 2


def test_fetch_jwks_inlines_the_key_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with jwks_server.serving(tmp_path, {"/jwks.json": Route(KEYS.encode())}) as server:
        tree = _tree(tmp_path, server.url("/jwks.json"))
        assert cli.main(["compile", str(tree), "--node", WEB, "--fetch-jwks", "--jwks-ca-file",
                         str(server.ca_file)]) == 0
    out = capsys.readouterr()
    assert json.dumps(KEYS) in out.out and "MW0412" not in out.err  # the key set, as a JSON string in the dump


def test_validate_fetch_jwks_reports_a_uri_that_gives_no_key_set(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with jwks_server.serving(tmp_path, {"/jwks.json": Route(b"<html>login</html>")}) as server:
        tree = _tree(tmp_path, server.url("/jwks.json"))
        assert cli.main(["validate", str(tree), "--fetch-jwks", "--jwks-ca-file", str(server.ca_file),
                         "--trust-domain-alias", "elsewhere"]) == 0
    out = capsys.readouterr().out
    assert "warning MW0412: spec.jwtRules[0].jwksUri:" in out and "is not a key set Envoy reads" in out
