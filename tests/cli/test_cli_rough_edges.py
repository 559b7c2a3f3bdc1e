"""Rough edges a new user hit (issue 16), each reproduced: the words and exit codes the CLI gives them."""

from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from compiler import load
from meshward import cli
from reconciler.ops import demo

EXAMPLE = Path(__file__).resolve().parents[2] / "policies-example"


@pytest.mark.parametrize(("text", "tab"), [
    ("a:\n\tb: 1\n", True),
    ("a:\n  b: 1\n\t c: 2\n", True),
    ("a: [1, 2\n", False),
    ("a: b: c\n", False),
])
def test_the_tab_hint_only_where_a_tab_is(text: str, tab: bool) -> None:
    (problem,) = load.load_text(text, "p.yaml").diagnostics
    assert problem.code == "MW0001"
    assert ("tabs are not allowed" in str(problem)) is tab


def test_one_error_is_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text("a: [1, 2\n")
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "1 file, 0 resources: 1 error, 0 warnings"


@pytest.mark.parametrize("flag", ["--admin-address", "--xds-address"])
@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1", "127.0.0.1:http"])
def test_serve_refuses_a_bad_address_at_parse_time(flag: str, address: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--repo", "r", flag, address])
    assert exc.value.code == 2
    assert "a port from 0 to 65535" in capsys.readouterr().err


def test_serve_logs_the_ports_it_bound(tmp_path: Path) -> None:
    """Port 0 takes free ports; the log line a user copies from says which, not ':0'."""
    repo = demo.make_repo(tmp_path / "repo")[0]
    proc = subprocess.Popen([sys.executable, "-m", "meshward", "serve", "--repo", str(repo), "--path", "policies",
                             "--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = _line_with(proc.stdout, "xDS on ", timeout=30.0)
        found = re.search(r"xDS on 127\.0\.0\.1:(\d+), admin on http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        xds, admin = map(int, found.groups())
        assert xds and admin
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=5) as resp:
            assert resp.status == 200
        socket.create_connection(("127.0.0.1", xds), timeout=5).close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _line_with(stream: IO[str], text: str, timeout: float) -> str:
    """The first line of a child's output that contains `text`, within `timeout` seconds (read on a thread: a
    buffered pipe's lines may already be in memory, where select() does not see them)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} within {timeout}s")


def test_compile_a_garbage_node_id_is_mw0402_not_an_unknown_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compile", str(EXAMPLE), "--node", "garbage"]) == 2
    err = capsys.readouterr().err
    assert "error MW0402" in err and "'garbage'" in err and "MW0401" not in err


def test_bootstrap_refuses_a_garbage_node_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "envoy.json"
    assert cli.main(["bootstrap", "--node", "garbage", "-o", str(out)]) == 2
    assert "'garbage'" in capsys.readouterr().err and not out.exists()
    assert cli.main(["bootstrap", "--grpc", "--node", "garbage"]) == 2


def test_validate_an_empty_directory_exits_2_unless_allowed(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a policy")
    assert cli.main(["validate", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "0 files" in captured.out and "no policy file" in captured.err
    assert cli.main(["validate", str(tmp_path), "--allow-empty"]) == 0


def test_compile_all_without_proxies_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vs.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                      "metadata: {name: r, namespace: shop}\nspec: {hosts: [r], http: [{route: "
                                      "[{destination: {host: r}}]}]}\n")
    assert cli.main(["compile", str(tmp_path), "--all", "-o", str(tmp_path / "out")]) == 0
    assert "no proxies" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["messages"], ["schemas"], ["fields"], ["validate", "--list-codes"]])
def test_generators_print_and_write_nothing_without_write(args: list[str], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("<!-- fields:begin -->\n<!-- fields:end -->\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert ("MW0001" in out) if args[0] in ("messages", "validate") else out.strip()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
    assert (tmp_path / "README.md").read_text() == "<!-- fields:begin -->\n<!-- fields:end -->\n"


def test_messages_and_schemas_write_only_into_the_named_dir(tmp_path: Path) -> None:
    assert cli.main(["messages", "--write", str(tmp_path / "docs")]) == 0
    assert cli.main(["messages", "--check", "--file", str(tmp_path / "docs" / "messages.md")]) == 0
    assert cli.main(["schemas", "--write", str(tmp_path / "schemas")]) == 0
    assert cli.main(["schemas", "--check", "--dir", str(tmp_path / "schemas")]) == 0
