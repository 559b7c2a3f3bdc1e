"""pipeline.check with shared caches gives exactly what a fresh run gives, after edits, duplicates and errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from compiler import load, pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import meshgen

BROKEN_VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken, namespace: ns0}
spec:
  hosts: [nowhere]
  http:
  - route:
    - destination: {host: nowhere, subset: v9}
      weight: 50
"""


def _rendered(checked: pipeline.Checked) -> tuple[list[str], list[str]]:
    return [d.render() for d in checked.diagnostics], [r.source_ref() for r in checked.resources]


def _same_as_fresh(root: Path, cache: load.ParseCache, check_cache: pipeline.CheckCache) -> pipeline.Checked:
    cached = pipeline.check([root], cache=cache, check_cache=check_cache)
    assert _rendered(cached) == _rendered(pipeline.check([root]))
    return cached


def test_cached_runs_match_fresh_runs(tmp_path: Path) -> None:
    root = meshgen.write_mesh(tmp_path, 25)
    cache, check_cache = load.ParseCache(), pipeline.CheckCache()
    _same_as_fresh(root, cache, check_cache)
    assert check_cache.hits == 0
    analyzed_cold = check_cache.analysis.analyzed
    changed = root / "ns0" / "svc1.yaml"
    changed.write_text(changed.read_text().replace("weight: 80", "weight: 70").replace("weight: 15", "weight: 25"))
    _same_as_fresh(root, cache, check_cache)
    assert check_cache.misses == 25 * 6 + 1 and check_cache.hits == 25 * 6 - 1  # only the edited document
    assert check_cache.analysis.analyzed - analyzed_cold == 5  # the VirtualService, by its 5 per-resource analyzers
    (root / "ns0" / "broken.yaml").write_text(BROKEN_VS)
    broken = _same_as_fresh(root, cache, check_cache)
    assert {"MW0302", "MW0303"} <= {d.code for d in broken.diagnostics}
    (root / "ns0" / "copy.yaml").write_text((root / "ns0" / "svc2.yaml").read_text())  # duplicates: MW0011
    duplicated = _same_as_fresh(root, cache, check_cache)
    assert "MW0011" in {d.code for d in duplicated.diagnostics}
    (root / "ns0" / "copy.yaml").unlink()
    (root / "ns0" / "broken.yaml").write_text("kind: [\n")
    _same_as_fresh(root, cache, check_cache)


def test_a_file_renamed_keeps_its_new_name_in_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BROKEN_VS)
    cache, check_cache = load.ParseCache(), pipeline.CheckCache()
    first = pipeline.check([tmp_path], cache=cache, check_cache=check_cache)
    (tmp_path / "a.yaml").rename(tmp_path / "b.yaml")
    second = pipeline.check([tmp_path], cache=cache, check_cache=check_cache)
    assert {d.position.file for d in first.diagnostics} == {str(tmp_path / "a.yaml")}
    assert {d.position.file for d in second.diagnostics} == {str(tmp_path / "b.yaml")}


def test_changes_to_looked_up_kinds_reach_the_cached_analyzers(tmp_path: Path) -> None:
    root = meshgen.write_mesh(tmp_path, 6)
    cache, check_cache = load.ParseCache(), pipeline.CheckCache()
    assert _same_as_fresh(root, cache, check_cache).ok
    svc3 = root / "ns0" / "svc3.yaml"
    documents = svc3.read_text().split("---\n")
    svc3.write_text("---\n".join(documents[1:]))  # the Service goes: its VirtualService and DestinationRule dangle
    dangling = _same_as_fresh(root, cache, check_cache)
    assert {"MW0302", "MW0318"} <= {d.code for d in dangling.diagnostics}
    svc3.write_text("---\n".join([*documents[:3], *(d.replace("version: v", "version: w") for d in documents[3:])]))
    unselected = _same_as_fresh(root, cache, check_cache)  # WorkloadEntries relabeled: subsets select nothing
    assert "MW0317" in {d.code for d in unselected.diagnostics}
    svc3.write_text("---\n".join(documents))
    assert _same_as_fresh(root, cache, check_cache).ok


def _analyzer_cases() -> dict[str, tuple[str, str]]:
    """The (failing, passing) input of every analyzer code, from test_analyzer_codes.py."""
    path = Path(__file__).with_name("test_analyzer_codes.py")
    spec = importlib.util.spec_from_file_location("analyzer_code_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {code: (module.SERVICE + failing, module.SERVICE + passing)
            for code, (failing, passing) in module.CASES.items()}


def _write_documents(root: Path, text: str) -> None:
    """One file per document, so that switching inputs changes only the files whose document differs."""
    wanted = {f"doc{i}.yaml": doc for i, doc in enumerate(d for d in text.split("---\n") if d.strip())}
    for old in root.glob("*.yaml"):
        if old.name not in wanted:
            old.unlink()
    for name, doc in wanted.items():
        path = root / name
        if not path.exists() or path.read_text() != doc:
            path.write_text(doc)


def test_every_analyzer_code_appears_and_goes_with_shared_caches(tmp_path: Path) -> None:
    cache, check_cache = load.ParseCache(), pipeline.CheckCache()
    for code, (failing, passing) in sorted(_analyzer_cases().items()):
        _write_documents(tmp_path, passing)
        assert code not in {d.code for d in _same_as_fresh(tmp_path, cache, check_cache).diagnostics}
        _write_documents(tmp_path, failing)
        assert code in {d.code for d in _same_as_fresh(tmp_path, cache, check_cache).diagnostics}
        _write_documents(tmp_path, passing)
        assert code not in {d.code for d in _same_as_fresh(tmp_path, cache, check_cache).diagnostics}


def test_edits_patched_into_the_last_run_match_fresh_runs(tmp_path: Path) -> None:
    root = meshgen.write_mesh(tmp_path, 8)
    (root / "ns0" / "bad.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: Bad}\n")
    cache, check_cache = load.ParseCache(), pipeline.CheckCache()
    _same_as_fresh(root, cache, check_cache)
    svc2 = root / "ns0" / "svc2.yaml"
    original = svc2.read_text()
    edits = [original.replace("timeout: 5s", "timeout: 5 seconds"),  # a per-resource (validation) error
             original.replace("retryOn: \"5xx,reset\"", "retryOn: \"5xx,bogus\""),
             original.replace("weight: 80", "weight: 81"),  # an analyzer finding (weights) or none
             original]
    for edit in edits:
        svc2.write_text(edit)
        (root / "ns0" / "bad.yaml").write_text(f"apiVersion: v1\nkind: Service\nmetadata: {{name: Bad{len(edit)}}}\n")
        _same_as_fresh(root, cache, check_cache)
    assert check_cache._last is not None and check_cache._last.unique


def _checked_documents(documents: list[load.Document], check_cache: pipeline.CheckCache) -> None:
    cached = pipeline.check_documents(documents, check_cache=check_cache)
    fresh = pipeline.check_documents(documents)
    assert _rendered(cached) == _rendered(fresh)


def test_document_lists_realigned_after_inserts_removals_and_moves(tmp_path: Path) -> None:
    root = meshgen.write_mesh(tmp_path, 6)
    documents = load.load([root]).documents
    extra = load.load_text(BROKEN_VS, "extra.yaml").documents
    check_cache = pipeline.CheckCache()
    for variant in (documents, [*extra, *documents, *extra], documents[5:], documents[::-1],
                    [*documents[:7], *extra, *documents[9:]], [*documents[:3], *documents[4:]], documents):
        _checked_documents(list(variant), check_cache)
    hits = check_cache.hits
    _checked_documents(documents, check_cache)
    assert check_cache.hits == hits + len(documents)


def _mesh_vs(name: str, namespace: str, hosts: str, export: str = "") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: "
            f"{namespace}}}\nspec:\n  hosts: {hosts}\n{export}  http:\n  - route:\n    - destination: {{host: a}}\n")


def test_memoized_analyzers_follow_edits_of_the_resources_they_index(tmp_path: Path) -> None:
    """Host conflicts are judged over the whole revision from per-resource memos: every edit of one
    VirtualService's hosts or exportTo gives what a fresh run gives, and so does going back to an earlier version
    (whose resource objects the caches may hand out again)."""
    cache, check_cache = load.ParseCache(), pipeline.CheckCache()
    (tmp_path / "a.yaml").write_text(_mesh_vs("a", "ns1", "[a, '*.example.com']"))
    (tmp_path / "gw.yaml").write_text(_mesh_vs("gw", "ns1", "[a]", "  gateways: [ingress]\n"))
    b = tmp_path / "b.yaml"
    versions = [_mesh_vs("b", "ns2", "[b]"),
                _mesh_vs("b", "ns2", "[a.ns1.svc.cluster.local]"),  # conflicts with a, in every namespace
                _mesh_vs("b", "ns2", "[a.ns1.svc.cluster.local]", "  exportTo: ['.']\n"),
                _mesh_vs("b", "ns2", "[www.example.com]", "  exportTo: ['.']\n"),  # under a's wildcard
                _mesh_vs("b", "ns2", "[www.example.com]", "  exportTo: ['.']\n  gateways: [ingress]\n")]
    codes = []
    for text in [*versions, *versions[::-1], versions[1]]:
        b.write_text(text)
        codes.append(sorted(d.code for d in _same_as_fresh(tmp_path, cache, check_cache).diagnostics))
    assert any("MW0305" in found for found in codes) and any("MW0305" not in found for found in codes)


def test_destination_rule_edits_reach_the_unchanged_virtual_services(tmp_path: Path) -> None:
    """The VirtualServices' memoized subset references meet each revision's DestinationRules."""
    root = meshgen.write_mesh(tmp_path, 4)
    cache, check_cache = load.ParseCache(), pipeline.CheckCache()
    assert _same_as_fresh(root, cache, check_cache).ok
    svc2 = root / "ns0" / "svc2.yaml"
    original = svc2.read_text()
    svc2.write_text(original.replace("{name: v2,", "{name: v9,"))  # the VirtualService's subset v2 goes
    assert "MW0303" in {d.code for d in _same_as_fresh(root, cache, check_cache).diagnostics}
    (root / "ns0" / "extra.yaml").write_text(original.split("---\n")[2].replace("name: svc2,", "name: svc2b,"))
    assert "MW0320" in {d.code for d in _same_as_fresh(root, cache, check_cache).diagnostics}
    (root / "ns0" / "extra.yaml").unlink()
    svc2.write_text(original)
    assert _same_as_fresh(root, cache, check_cache).ok
