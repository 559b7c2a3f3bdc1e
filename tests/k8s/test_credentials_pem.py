"""TLS credentials for credentialName: directory and Secret layouts, Istio's key names and `-cacert` rule, PEM
checks that name the secret and never quote key material."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from tls_certs import TestCA

from reconciler.kube import credentials


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


def write(root: Path, name: str, files: dict[str, bytes]) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    for file_name, data in files.items():
        (root / name / file_name).write_bytes(data)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kube_secret(name: str, ns: str, data: dict[str, bytes], type_: str = "kubernetes.io/tls") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"name": name, "namespace": ns},
            "data": {k: b64(v) for k, v in data.items()}}


def test_directory_layout_gives_key_pair_and_cacert(ca: TestCA, tmp_path: Path) -> None:
    leaf = ca.issue("shop.example.com")
    write(tmp_path, "shop-cert", {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem, "ca.crt": ca.cert_pem})
    (tmp_path / "..data").mkdir()  # a mounted Secret volume's bookkeeping is not a secret
    creds = credentials.load_dir(tmp_path)
    assert creds.problems == ()
    assert sorted(creds.secrets) == ["shop-cert", "shop-cert-cacert"]
    pair = creds.secrets["shop-cert"]
    assert pair.certificate_chain == leaf.cert_pem.decode() and pair.private_key == leaf.key_pem.decode()
    assert pair.inline and not pair.trusted_ca
    assert creds.secrets["shop-cert-cacert"].trusted_ca == ca.cert_pem.decode()


def test_mismatched_pair_is_refused_by_name_without_key_material(ca: TestCA, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    one, other = ca.issue("a.example.com"), ca.issue("b.example.com")
    write(tmp_path, "bad", {"tls.crt": one.cert_pem, "tls.key": other.key_pem})
    write(tmp_path, "good", {"tls.crt": other.cert_pem, "tls.key": other.key_pem})
    with caplog.at_level(logging.DEBUG):
        creds = credentials.load_dir(tmp_path)
    assert list(creds.secrets) == ["good"]
    assert len(creds.problems) == 1 and str(tmp_path / "bad") in creds.problems[0]
    assert "does not belong" in creds.problems[0]
    key_body = other.key_pem.decode().splitlines()[1]
    assert key_body not in caplog.text and all(key_body not in p for p in creds.problems)


@pytest.mark.parametrize(("files", "expected"), [
    ({"tls.crt": b"not pem", "tls.key": b"x"}, "holds no PEM certificate"),
    ({"tls.crt": None, "tls.key": b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
     "not an unencrypted PEM private key"),
    ({"tls.crt": None}, "needs both tls.crt and tls.key"),
    ({"ca.crt": b"junk"}, "the CA bundle holds no PEM certificate"),
])
def test_bad_files_are_reported(ca: TestCA, tmp_path: Path, files: dict[str, bytes | None], expected: str) -> None:
    leaf = ca.issue("x.example.com")
    write(tmp_path, "broken", {k: v if v is not None else leaf.cert_pem for k, v in files.items()})
    creds = credentials.load_dir(tmp_path)
    assert creds.secrets == {}
    assert len(creds.problems) == 1 and expected in creds.problems[0] and "broken" in creds.problems[0]


def test_missing_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    creds = credentials.load_dir(tmp_path / "nope")
    assert creds.secrets == {} and "nope" in creds.problems[0]


def test_kube_secrets_by_namespace_with_istio_key_names(ca: TestCA) -> None:
    leaf = ca.issue("shop.example.com")
    docs = [
        kube_secret("shop-cert", "istio-system", {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem}),
        kube_secret("generic", "istio-system", {"cert": leaf.cert_pem, "key": leaf.key_pem, "cacert": ca.cert_pem},
                    type_="Opaque"),
        kube_secret("shop-cert", "other", {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem}),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "garbled", "namespace": "other"},
         "data": {"tls.crt": "%%%"}},
        kube_secret("api-token", "other", {"key": b"not a credential"}, type_="Opaque"),  # not TLS: ignored
    ]
    by_ns = credentials.from_kube(docs)
    assert sorted(by_ns) == ["istio-system", "other"]
    assert sorted(by_ns["istio-system"].secrets) == ["generic", "generic-cacert", "shop-cert"]
    assert by_ns["istio-system"].problems == ()
    assert list(by_ns["other"].secrets) == ["shop-cert"]
    assert by_ns["other"].problems == ("secret other/garbled: data is not base64",)


def test_a_cacert_secret_of_its_own_wins_over_the_bundle_inside(ca: TestCA) -> None:
    """Istio's GetCaCert: `<name>-cacert` is looked up first, the CA inside `<name>` is the fallback."""
    leaf, other_ca = ca.issue("shop.example.com"), TestCA("other CA")
    docs = [kube_secret("shop", "gw", {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem, "ca.crt": ca.cert_pem}),
            kube_secret("shop-cacert", "gw", {"ca.crt": other_ca.cert_pem}, type_="Opaque")]
    secrets = credentials.from_kube(docs)["gw"].secrets
    assert secrets["shop-cacert"].trusted_ca == other_ca.cert_pem.decode()
    assert secrets["shop"].certificate_chain == leaf.cert_pem.decode()


def test_fingerprint_changes_when_a_file_is_rewritten(ca: TestCA, tmp_path: Path) -> None:
    leaf = ca.issue("a.example.com")
    write(tmp_path, "a", {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem})
    before = credentials.fingerprint(tmp_path)
    renewed = ca.issue("a.example.com")
    write(tmp_path, "a", {"tls.crt": renewed.cert_pem + b"\n", "tls.key": renewed.key_pem})
    assert credentials.fingerprint(tmp_path) != before and len(before) == 2
