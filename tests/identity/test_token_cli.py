"""`meshward token`: a 0600 token file the CA directory's key verifies; bad names and durations exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshward import cli
from reconciler.identity import tokens


def test_token_writes_a_private_file_the_ca_verifies(tmp_path: Path) -> None:
    out = tmp_path / "web.jwt"
    assert cli.main(["token", "--ca-dir", str(tmp_path / "ca"), "--namespace", "shop",
                     "--service-account", "web", "--ttl", "1h30m", "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    key = tokens.load_or_create_key(tmp_path / "ca")
    assert tokens.verify(key.public_key(), out.read_text()) == tokens.Caller("shop", "web")


def test_token_refuses_a_name_kubernetes_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["token", "--ca-dir", str(tmp_path), "--namespace", "Shop", "--service-account", "web",
                     "-o", str(tmp_path / "t")]) == 2
    assert "namespace 'Shop' is not a DNS-1123 label" in capsys.readouterr().err


@pytest.mark.parametrize("ttl", ["0s", "1d", "h", ""])
def test_token_refuses_a_bad_duration(tmp_path: Path, ttl: str) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "--ca-dir", str(tmp_path), "--namespace", "shop", "--service-account", "web",
                  "--ttl", ttl, "-o", str(tmp_path / "t")])
    assert exited.value.code == 2


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_token_never_replaces_what_is_not_a_regular_file(tmp_path: Path, kind: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The token is swapped in by a rename, which would replace a device, FIFO or directory at that path (run as
    root, `-o /dev/null` once turned the null device into a token file): such a path is refused, left as it was."""
    out = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(out)
    else:
        out.mkdir()
    before = out.lstat().st_mode
    assert cli.main(["token", "--ca-dir", str(tmp_path / "ca"), "--namespace", "shop", "--service-account", "web",
                     "-o", str(out)]) == 2
    assert f"{out}: not a regular file" in capsys.readouterr().err
    assert out.lstat().st_mode == before
