"""The loader's limits on one document (compiler.yaml_bounds) and on what a path may be: nothing a file holds or is
can crash, hang or exhaust the loader; a breach is an error at the document's line (issue 13).

The inputs that crashed or hung are run in a subprocess, so that a regression kills a child, not the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import load, yaml_bounds

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"


def _validate(*paths: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshward", "validate", *map(str, paths)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _problems(text: str) -> list[tuple[str, int]]:
    return [(d.code, d.position.line) for d in load.load_text(text).diagnostics]


def test_deep_flow_sequence_is_an_error_not_a_segfault(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text("x: " + "[" * 100_000 + "]" * 100_000 + "\n")
    (tmp_path / "ns.yaml").write_text(NAMESPACE)
    proc = _validate(tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"deep.yaml:1:{yaml_bounds.MAX_DEPTH + 3}: error MW0016" in proc.stdout
    assert "1 resource:" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("text, line", [
    ("a: 1\n---\nx:\n" + "".join("  " * i + f"k{i}:\n" for i in range(120)) + "  " * 120 + "v: 1\n", 104),
    ("x:\n" + "- " * 5_000 + "a\n", 2),
    ("x: " + "{a: " * 150 + "1" + "}" * 150 + "\n", 1),
    ("a: &a " + "[" * 60 + "1" + "]" * 60 + "\nb: " + "[" * 45 + "*a" + "]" * 45 + "\n", 2),  # 1 + 45 + 61
])
def test_nesting_past_the_limit_is_located(text: str, line: int) -> None:
    assert _problems(text) == [("MW0016", line)]


def test_alias_expansion_past_the_limit_is_located() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    assert _problems("\n".join(lines) + "\n") == [("MW0017", 6)]  # a5 names 10^5 nodes: the 4th copy is one too many


def test_document_over_the_api_server_object_size_is_an_error_at_its_line(tmp_path: Path) -> None:
    """20,000 http rules: 2.7 MB, over what etcd (so the API server) stores; the file's other documents load."""
    rules = "".join(f"  - match:\n    - uri:\n        prefix: /p{i}/\n    route:\n    - destination:\n"
                    f"        host: reviews\n" for i in range(20_000))
    (tmp_path / "vs.yaml").write_text(NAMESPACE + "---\n# many rules\napiVersion: networking.istio.io/v1\n"
                                      "kind: VirtualService\nmetadata: {name: r, namespace: shop}\nspec:\n"
                                      "  hosts: [reviews]\n  http:\n" + rules)
    result = load.load([tmp_path])
    assert [(d.code, d.position.line) for d in result.diagnostics] == [("MW0015", 6)]
    assert [d.data["kind"] for d in result.documents] == ["Namespace"]


def test_documents_within_the_limits_read_as_before() -> None:
    nested = "x: " + "[" * 45 + "1" + "]" * 45 + "\n"  # past the quick pass, within the limit: measured exactly
    block = "x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "v: 1\n"
    aliases = "a: &a {b: [1, 2]}\nc: [*a, *a]\n"
    for text in (nested, block, aliases):
        result = load.load_text(text)
        assert not result.diagnostics and len(result.documents) == 1


def test_symlink_loop_is_reported_not_raised(tmp_path: Path) -> None:
    os.symlink("b.yaml", tmp_path / "a.yaml")
    os.symlink("a.yaml", tmp_path / "b.yaml")
    (tmp_path / "ns.yaml").write_text(NAMESPACE)
    result = load.load([tmp_path])
    assert sorted((d.code, d.position.file) for d in result.diagnostics) == [("MW0010", f"{tmp_path}/a.yaml"),
                                                               ("MW0010", f"{tmp_path}/b.yaml")]
    assert len(result.documents) == 1


def test_fifo_is_reported_and_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "ns.yaml").write_text(NAMESPACE)
    proc = _validate(tmp_path, tmp_path / "pipe.yaml", timeout=20.0)  # a blocking open would wait for a writer
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "pipe.yaml:0:0: error MW0014" in proc.stdout and "1 resource:" in proc.stdout


def test_a_fifo_put_in_a_files_place_after_its_stat_is_not_waited_for(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    script = "import sys; from compiler import load; print(load._read(sys.argv[1], 1 << 20)[1])"
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "pipe.yaml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=20, check=False)
    assert proc.stdout.strip() == "None", proc.stderr[-2000:]
