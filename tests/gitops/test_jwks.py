"""jwksUri key sets as the reconciler fetches them (reconciler/jwks.py), against real servers on 127.0.0.1: https
verified against the given roots, plain http only from loopback, no redirects, no link-local addresses, bounded in
time and size; kept per URI, refreshed when due, a failed refresh keeping the last good key set; a changed key set
compiles the serving commit again. Key sets found through an issuer's OpenID discovery document under the same
bounds (the document and the key set together in the rule's timeout), never led from https to plain http."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwks_server
import pytest
from gitops_fakes import FakeCache, FakeCompiler, snapshot_for
from gitops_repos import Remote
from jwks_server import KeyServer, Route

from compiler.build import Discovery
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


def _discovery(jwks_uri: object) -> Route:
    return Route(json.dumps({"issuer": "https://idp", "jwks_uri": jwks_uri}).encode())


def test_discovery_finds_the_key_set_its_document_names(https: KeyServer) -> None:
    https.routes["/idp/.well-known/openid-configuration"] = _discovery(https.url("/jwks.json"))
    fetcher = _fetcher(https)
    for issuer in (https.url("/idp"), https.url("/idp/")):  # one trailing slash is not part of the path
        assert fetcher.fetch(Discovery(issuer), 5) == jwks.FetchedJwks(keys=KEYS.decode())
    assert https.hits["/idp/.well-known/openid-configuration"] == 2 and https.hits["/jwks.json"] == 2


def test_discovery_documents_that_name_no_key_set_are_errors(https: KeyServer) -> None:
    doc = https.url("/idp/.well-known/openid-configuration")
    fetcher = _fetcher(https, max_bytes=8192)
    for route, error in [
        (None, f"{doc}: status 404"),
        (Route(b"<html>sign in</html>"), f"{doc} is not a JSON discovery document"),
        # well-formed, but nested past the decoder's limit (decoded, it would be a list: "names no jwks_uri")
        (Route(b"[" * 3000 + b"]" * 3000), f"{doc} is not a JSON discovery document"),
        (Route(b'["https://idp"]'), f"{doc} names no jwks_uri"),
        (_discovery(None), f"{doc} names no jwks_uri"),
        (_discovery(["https://idp/keys"]), f"{doc} names no jwks_uri"),
        (Route(b" " * 9000), f"{doc}: the body is over 8192 bytes"),
        (_discovery(https.url("/none")), f"{https.url('/none')} (the jwks_uri {doc} names): status 404"),
    ]:
        https.routes.pop("/idp/.well-known/openid-configuration", None)
        if route is not None:
            https.routes["/idp/.well-known/openid-configuration"] = route
        assert fetcher.fetch(Discovery(https.url("/idp")), 5) == jwks.FetchedJwks(error=error)


def test_discovery_never_leads_to_plain_http_or_link_local_addresses(https: KeyServer) -> None:
    doc = https.url("/idp/.well-known/openid-configuration")
    with jwks_server.serving(routes={"/jwks.json": Route(KEYS)}) as plain:
        for uri, error in [
            (plain.url("/jwks.json"), f"{doc} names jwks_uri {plain.url('/jwks.json')}: the key set of an https"),
            ("https://169.254.169.254/keys", f"(the jwks_uri {doc} names): 169.254.169.254 resolves to 169.254"),
        ]:
            https.routes["/idp/.well-known/openid-configuration"] = _discovery(uri)
            assert error in _fetcher(https).fetch(Discovery(https.url("/idp")), 5).error
        assert plain.hits["/jwks.json"] == 0
        # a discovery document that is itself on plain http (loopback only, as for jwksUri) may name http keys
        plain.routes["/.well-known/openid-configuration"] = _discovery(plain.url("/jwks.json"))
        assert jwks.Fetcher().fetch(Discovery(plain.base), 5).keys == KEYS.decode()
    assert jwks.Fetcher().fetch(Discovery("http://idp.example.com"), 5).error == (
        "http://idp.example.com/.well-known/openid-configuration: only https is fetched (plain http only from a "
        "loopback address)")


def test_the_timeout_bounds_discovery_and_the_key_set_together(https: KeyServer) -> None:
    https.routes["/idp/.well-known/openid-configuration"] = _discovery(https.url("/slow"))
    https.routes["/slow"] = Route(KEYS, delay=0.4)
    https.routes["/idp/.well-known/openid-configuration"].delay = 0.4
    # each step alone fits in 0.6 s, the two do not
    assert "timed out" in _fetcher(https).fetch(Discovery(https.url("/idp")), 0.6).error
    https.routes["/idp/.well-known/openid-configuration"].delay = 3.0
    assert "timed out" in _fetcher(https).fetch(Discovery(https.url("/idp")), 0.3).error


def test_a_refresh_discovers_again_and_keeps_the_last_good_key_set(https: KeyServer) -> None:
    """Pilot's refresher resolves the issuer's jwks_uri again at each refresh: a provider that moves its keys is
    followed; one whose discovery fails keeps the key set it had."""
    https.routes["/idp/.well-known/openid-configuration"] = _discovery(https.url("/jwks.json"))
    https.routes["/rotated.json"] = Route(OTHER_KEYS)
    keys = jwks.KeySets(_fetcher(https, refresh_interval=100, retry_interval=10))
    source = Discovery(https.url("/idp"))
    assert keys.resolve({source: 5})[source].keys == KEYS.decode()
    https.routes["/idp/.well-known/openid-configuration"] = Route(b"", 500)
    assert not keys.refresh(now=time.monotonic() + 101) and keys.current()[source].keys == KEYS.decode()
    https.routes["/idp/.well-known/openid-configuration"] = _discovery(https.url("/rotated.json"))
    assert keys.refresh(now=time.monotonic() + 11) and keys.current()[source].keys == OTHER_KEYS.decode()


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
