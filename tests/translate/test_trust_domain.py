"""The trust domain bundle against Istio's own cases (pilot/pkg/security/trustdomain/bundle_test.go
TestReplaceTrustDomainAliases), and how translate writes it into principals and SANs."""

from __future__ import annotations

import pytest

from compiler.trust import TrustDomain

# (domain, aliases, principals, expected): bundle_test.go's table, case for case
REPLACE_CASES = [
    ("cluster.local", (), ["cluster.local/ns/foo/sa/bar"], ["cluster.local/ns/foo/sa/bar"]),
    ("cluster.local", (), ["*"], ["*"]),
    ("cluster.local", (), ["*/ns/foo/sa/bar"], ["*/ns/foo/sa/bar"]),
    ("td2", ("td1",), ["td1/ns/foo/sa/bar"], ["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar"]),
    ("td1", ("cluster.local",), ["cluster.local/ns/foo/sa/bar", "cluster.local/ns/yyy/sa/zzz"],
     ["td1/ns/foo/sa/bar", "cluster.local/ns/foo/sa/bar", "td1/ns/yyy/sa/zzz", "cluster.local/ns/yyy/sa/zzz"]),
    ("td1", ("cluster.local",), ["*/ns/foo/sa/bar", "*sa/zzz", "*"], ["*/ns/foo/sa/bar", "*sa/zzz", "*"]),
    ("td2", ("td1", "cluster.local"), ["cluster.local/ns/foo/sa/bar", "td1/ns/yyy/sa/zzz"],
     ["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar", "cluster.local/ns/foo/sa/bar",
      "td2/ns/yyy/sa/zzz", "td1/ns/yyy/sa/zzz", "cluster.local/ns/yyy/sa/zzz"]),
    ("td2", ("foo-td1", "cluster.local"), ["*-td1/ns/foo/sa/bar"],
     ["td2/ns/foo/sa/bar", "*-td1/ns/foo/sa/bar", "cluster.local/ns/foo/sa/bar"]),
    ("td1", ("td2",), ["some-td/ns/foo/sa/bar"], ["some-td/ns/foo/sa/bar"]),
    ("td1", ("td2", "some-td"), ["some-td/ns/foo/sa/bar"],
     ["td1/ns/foo/sa/bar", "td2/ns/foo/sa/bar", "some-td/ns/foo/sa/bar"]),
    ("new-td", ("td2", "td3"), ["td1/ns/some-ns/sa/some-sa", "td2/ns/foo/sa/bar"],
     ["td1/ns/some-ns/sa/some-sa", "new-td/ns/foo/sa/bar", "td2/ns/foo/sa/bar", "td3/ns/foo/sa/bar"]),
    ("new-td", ("td2", "td3"), ["/ns/some-ns/sa/some-sa"], ["/ns/some-ns/sa/some-sa"]),
    ("new-td", ("old-td",), ["*-td/ns/some-ns/sa/some-sa"], ["*-td/ns/some-ns/sa/some-sa"]),
]


@pytest.mark.parametrize(("domain", "aliases", "principals", "expected"), REPLACE_CASES)
def test_principals_as_istio_replaces_trust_domain_aliases(domain: str, aliases: tuple[str, ...],
                                                          principals: list[str], expected: list[str]) -> None:
    assert TrustDomain(domain, aliases).principals(principals) == expected


def test_cluster_local_stands_for_the_renamed_domain() -> None:
    assert TrustDomain("prod.example").principals(["cluster.local/ns/a/sa/b"]) == ["prod.example/ns/a/sa/b"]


def test_foreign_names_only_another_meshs_domain() -> None:
    bundle = TrustDomain("td1", ("td2",))
    assert bundle.foreign("other/ns/a/sa/b") == "other"
    assert bundle.foreign("/ns/a/sa/b") == ""
    for kept in ("cluster.local/ns/a/sa/b", "td2/ns/a/sa/b", "*/ns/a/sa/b", "*", "td*/ns/a/sa/b"):
        assert bundle.foreign(kept) is None


def test_trust_domains_expand_to_the_bundle() -> None:
    bundle = TrustDomain("td1", ("td2",))
    assert bundle.trust_domains(["td2", "other"]) == ["td1", "td2", "other"]
    assert bundle.trust_domains(["other"]) == ["other"]


def test_identities_name_the_domain_and_each_alias() -> None:
    assert TrustDomain("td1", ("td2",)).identities("ns", "sa") == ("spiffe://td1/ns/ns/sa/sa",
                                                                    "spiffe://td2/ns/ns/sa/sa")
    assert TrustDomain().spiffe_id("ns", "sa") == "spiffe://cluster.local/ns/ns/sa/sa"
