"""Commit signature verification with real SSH keys and `git verify-commit`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitops_repos import Remote, gpg_export, gpg_key, gpg_stop, ssh_key

from reconciler.git.source import GitSource, SourceConfig

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) missing")


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """alice is allowed, mallory is not."""
    kdir = tmp_path / "keys"
    kdir.mkdir()
    alice, alice_pub = ssh_key(kdir, "alice")
    mallory, _ = ssh_key(kdir, "mallory")
    allowed = kdir / "allowed_signers"
    allowed.write_text(f'alice@example.com namespaces="git" {alice_pub}\n')
    return {"alice": alice, "mallory": mallory, "allowed": allowed}


def _source(remote: Remote, tmp_path: Path, allowed: Path) -> GitSource:
    return GitSource(SourceConfig(url=str(remote.bare), workdir=tmp_path / "work", verify_signatures=True,
                                  allowed_signers=allowed))


def test_signed_by_allowed_key_is_accepted(remote: Remote, tmp_path: Path, keys: dict[str, Path]) -> None:
    sha = remote.commit({"a.yaml": "v: 1\n"}, sign_with=keys["alice"])
    fetched = _source(remote, tmp_path, keys["allowed"]).poll()
    assert fetched is not None and fetched.commit.sha == sha
    assert fetched.signature is not None and fetched.signature.ok, fetched.signature
    assert "alice@example.com" in fetched.signature.detail
    assert fetched.tree is not None and (fetched.tree / "a.yaml").is_file()


def test_unsigned_commit_is_refused_and_not_exported(remote: Remote, tmp_path: Path, keys: dict[str, Path]) -> None:
    remote.commit({"a.yaml": "v: 1\n"})
    fetched = _source(remote, tmp_path, keys["allowed"]).poll()
    assert fetched is not None and fetched.signature is not None
    assert not fetched.signature.ok
    assert fetched.signature.detail == "unsigned commit"
    assert fetched.tree is None


def test_signed_by_unknown_key_is_refused(remote: Remote, tmp_path: Path, keys: dict[str, Path]) -> None:
    remote.commit({"a.yaml": "v: 1\n"}, sign_with=keys["mallory"])
    fetched = _source(remote, tmp_path, keys["allowed"]).poll()
    assert fetched is not None and fetched.signature is not None
    assert not fetched.signature.ok and fetched.tree is None
    assert "No principal matched" in fetched.signature.detail  # git's reason, for the status


def test_good_commit_after_a_refused_one_is_accepted(remote: Remote, tmp_path: Path, keys: dict[str, Path]) -> None:
    source = _source(remote, tmp_path, keys["allowed"])
    remote.commit({"a.yaml": "v: 1\n"}, sign_with=keys["mallory"])
    first = source.poll()
    assert first is not None and first.signature is not None and not first.signature.ok
    remote.commit({"a.yaml": "v: 2\n"}, sign_with=keys["alice"])
    second = source.poll()
    assert second is not None and second.signature is not None and second.signature.ok
    assert second.tree is not None and (second.tree / "a.yaml").read_text() == "v: 2\n"


def test_verify_without_allowed_signers_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allowed_signers"):
        GitSource(SourceConfig(url="x", workdir=tmp_path, verify_signatures=True))


@pytest.fixture
def gpg_keys(tmp_path: Path) -> Iterator[dict[str, tuple[Path, str]]]:
    """bob (allowed) and eve (not), each in a keyring of their own, as on two developers' machines."""
    if shutil.which("gpg") is None or shutil.which("gpgconf") is None:
        pytest.skip("gpg missing")
    homes = {name: tmp_path / f"gnupg-{name}" for name in ("bob", "eve")}
    try:
        yield {name: (home, gpg_key(home, f"{name} <{name}@example.com>")) for name, home in homes.items()}
    finally:
        for home in homes.values():
            gpg_stop(home)


def test_gpg_signed_commit_checked_against_armored_keys(remote: Remote, tmp_path: Path,
                                                        gpg_keys: dict[str, tuple[Path, str]],
                                                        keys: dict[str, Path]) -> None:
    bob_home, bob_fpr = gpg_keys["bob"]
    allowed = tmp_path / "allowed_mixed"
    allowed.write_text(keys["allowed"].read_text() + gpg_export(bob_home, bob_fpr))  # SSH lines + PGP block
    source = _source(remote, tmp_path, allowed)
    try:
        remote.commit({"a.yaml": "v: 1\n"}, gpg_key=gpg_keys["bob"])
        good = source.poll()
        assert good is not None and good.signature is not None
        assert good.signature.ok, good.signature
        remote.commit({"a.yaml": "v: 2\n"}, gpg_key=gpg_keys["eve"])
        bad = source.poll()
        assert bad is not None and bad.signature is not None and not bad.signature.ok and bad.tree is None
        remote.commit({"a.yaml": "v: 3\n"}, sign_with=keys["alice"])  # SSH keys in the same file still count
        ssh = source.poll()
        assert ssh is not None and ssh.signature is not None
        assert ssh.signature.ok, ssh.signature
    finally:
        source.close()
