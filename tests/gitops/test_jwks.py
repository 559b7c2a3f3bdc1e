"""jwksUri key sets as the reconciler fetches them (reconciler/jwks.py), against real servers on 127.0.0.1: https
verified against the given roots, plain http only from loopback, no redirects, no link-local addresses, bounded in
time and size; kept per URI, refreshed when due, a failed refresh keeping the last good key set; a changed key set
compiles the serving commit again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import jwks_server
import pytest
from gitops_fakes import FakeCache, FakeCompiler, snapshot_for
from gitops_repos import Remote
from jwks_server import KeyServer, Route

from reconciler import compose, jwks
from reconciler.git.source import GitSource, SourceConfig
from reconciler.loop import LoopConfig, Reconciler

KEYS = b'{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"a"}]}'
OTHER_KEYS = b'{"keys":[{"kty":"oct","k":"b3RoZXI","kid":"b"}]}'


@pytest.fixture
def https(tmp_path: Path) -> Iterator[KeyServer]:
    with jwks_server.serving(tmp_path, {"/jwks.json": Route(KEYS)}) as server:
        yield server


def _fetcher(server: KeyServer, **options: float) -> jwks.Fetcher:
    return jwks.Fetcher(jwks.FetchOptions(ca_file=server.ca_file, **options))  # type: ignore[arg-type]


def test_https_key_set_is_fetched_and_verified_against_the_given_roots(https: KeyServer) -> None:
    assert _fetcher(https).fetch(https.url("/jwks.json"), 5).keys == KEYS.decode()
    untrusted = jwks.Fetcher().fetch(https.url("/jwks.json"), 5)  # the system's roots do not know the test CA
    assert not untrusted.keys and "CERTIFICATE_VERIFY_FAILED" in untrusted.error


def test_plain_http_only_from_loopback() -> None:
    with jwks_server.serving(routes={"/jwks.json": Route(KEYS)}) as server:
        assert jwks.Fetcher().fetch(server.url("/jwks.json"), 5).keys == KEYS.decode()
    refused = jwks.Fetcher().fetch("http://keys.example.com/jwks.json", 5)
    assert refused.error == "only https is fetched (plain http only from a loopback address)"


def test_link_local_and_metadata_addresses_are_never_asked() -> None:
    for uri in ("https://169.254.169.254/latest/meta-data", "https://[fe80::1]/jwks.json"):
        assert "link-local or cloud metadata" in jwks.Fetcher().fetch(uri, 5).error


def test_errors_redirects_size_and_time_are_bounded(https: KeyServer) -> None:
    https.routes.update({
        "/down": Route(b"try later", 503),
        "/moved": Route(b"", 302, headers={"Location": "http://169.254.169.254/"}),
        "/big": Route(b"x" * 2048),
        "/slow": Route(KEYS, delay=3.0),
    })
    fetcher = _fetcher(https, max_bytes=1024)
    assert fetcher.fetch(https.url("/down"), 5).error == "status 503"
    assert fetcher.fetch(https.url("/moved"), 5).error == "status 302"
    assert fetcher.fetch(https.url("/big"), 5).error == "the body is over 1024 bytes"
    # the 0.3 s timeout ended it: waiting out the 3 s delay would have got the keys
    assert "timed out" in fetcher.fetch(https.url("/slow"), 0.3).error


def test_key_sets_are_fetched_once_and_dropped_when_no_longer_wanted(https: KeyServer) -> None:
    keys = jwks.KeySets(_fetcher(https))
    uri, down = https.url("/jwks.json"), https.url("/none")
    got = keys.resolve({uri: 5, down: 5})
    assert got[uri].keys == KEYS.decode() and got[down].error == "status 404"
    assert keys.resolve({uri: 5}) == {uri: got[uri]}
    assert https.hits["/jwks.json"] == 1 and keys.current() == {uri: got[uri]}


def test_refresh_when_due_keeps_the_last_good_key_set_and_retries_failures_sooner(https: KeyServer) -> None:
    keys = jwks.KeySets(_fetcher(https, refresh_interval=100, retry_interval=10))
    uri = https.url("/jwks.json")
    keys.resolve({uri: 5})
    generation = keys.generation
    assert not keys.refresh() and https.hits["/jwks.json"] == 1  # not due yet
    https.routes["/jwks.json"] = Route(b"", 500)
    assert not keys.refresh(now=time.monotonic() + 101)  # failed: the good key set stays
    assert keys.current()[uri].keys == KEYS.decode() and keys.generation == generation
    assert 0 < keys.next_due() <= 10
    https.routes["/jwks.json"] = Route(OTHER_KEYS)
    assert keys.refresh(now=time.monotonic() + 11)  # retried after the shorter interval, and changed
    assert keys.current()[uri].keys == OTHER_KEYS.decode() and keys.generation > generation


def test_a_changed_key_set_recompiles_the_serving_commit_without_fetching(remote: Remote, tmp_path: Path) -> None:
    compiler, cache = FakeCompiler(), FakeCache()
    source = GitSource(SourceConfig(url=str(remote.bare), workdir=tmp_path / "work"))
    polls: list[int] = []

    class Counting:
        def poll(self) -> object:
            polls.append(1)
            return source.poll()

    rec = Reconciler(Counting(), build=compiler.build, snapshot_for=snapshot_for, publisher=cache,
                     config=LoopConfig(poll_interval=3600, debounce=0.01))
    sha = remote.commit({"mesh.yaml": "good\n"})

    async def main() -> None:
        task = asyncio.create_task(rec.run())
        try:
            async with asyncio.timeout(10):
                while cache.revisions != [sha]:
                    await asyncio.sleep(0.02)
                fetched = len(polls)
                rec.inputs_changed()
                while len(cache.revisions) < 2:
                    await asyncio.sleep(0.02)
            assert cache.revisions == [sha, sha] and len(polls) == fetched and len(compiler.calls) == 2
        finally:
            rec.stop()
            await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_the_compiler_builds_again_when_a_key_set_changed(https: KeyServer, tmp_path: Path) -> None:
    """compose.Compiler: the jwksUri's key set is fetched for the build and inlined; the same tree builds from its
    memo until a refresh changes the key set."""
    uri = https.url("/jwks.json")
    (tmp_path / "mesh.yaml").write_text(f"""apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: app}}
spec:
  jwtRules: [{{issuer: "https://issuer.example.com", jwksUri: "{uri}"}}]
""")
    keys = jwks.KeySets(_fetcher(https, refresh_interval=100))
    compiler = compose.Compiler(keys=keys)
    tree = compiler.load(tmp_path)
    first = compiler.build(tree, None)
    assert first.build.inputs.jwks[uri].keys == KEYS.decode() and not first.diagnostics
    assert compiler.build(tree, None).build is first.build
    https.routes["/jwks.json"] = Route(OTHER_KEYS)
    assert keys.refresh(now=time.monotonic() + 101)
    again = compiler.build(tree, None)
    assert again.build is not first.build and again.build.inputs.jwks[uri].keys == OTHER_KEYS.decode()
    assert https.hits["/jwks.json"] == 2
