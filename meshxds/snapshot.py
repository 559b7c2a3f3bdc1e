"""A snapshot: one consistent version of every xDS resource type for one proxy.

Each resource keeps its deterministic serialization, computed once, and a content-hash version, so that the ADS
server never re-serializes per proxy and replicas fed the same commit agree on every version.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterable, Mapping

from google.protobuf import any_pb2
from google.protobuf.message import Message

from meshxds import refs as refs_mod
from meshxds import type_urls


@dataclasses.dataclass(frozen=True, slots=True)
class XdsResource:
    """One resource as served: its bytes, their content hash, and what it references of the rest of its snapshot
    (found while it is built, from the message or from the parts it is written from). The protobuf message is not
    kept (a server holding thousands of proxies' resources would hold several times their serialized size in
    message objects); `message` parses it back for the few readers that want one (config dumps, tests)."""

    name: str
    type_url: str
    message_type: type[Message]
    serialized: bytes
    version: str
    refs: refs_mod.Refs

    @property
    def message(self) -> Message:
        return self.message_type.FromString(self.serialized)

    @staticmethod
    def of(name: str, type_url: str, message: Message) -> XdsResource:
        data = message.SerializeToString(deterministic=True)
        return XdsResource(name, type_url, type(message), data, hashlib.sha256(data).hexdigest()[:16],
                           refs_mod.of(message))

    @staticmethod
    def parsed(name: str, type_url: str, data: bytes, message_type: type[Message], *,
               refs: refs_mod.Refs) -> XdsResource:
        """From bytes written without building the message (meshxds.wire), with the references the writer knows from
        the parts (the same `refs.of` finds in the message)."""
        return XdsResource(name, type_url, message_type, data, hashlib.sha256(data).hexdigest()[:16], refs)

    def to_any(self) -> any_pb2.Any:
        return any_pb2.Any(type_url=self.type_url, value=self.serialized)


def set_version(versions: Mapping[str, str]) -> str:
    """A content hash over (name, content version) pairs in name order: a type's version for a proxy."""
    text = "".join(f"{name}\0{versions[name]}" for name in sorted(versions))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _type_version(resources: Mapping[str, XdsResource]) -> str:
    return set_version({name: res.version for name, res in resources.items()})


@dataclasses.dataclass(frozen=True, slots=True)
class TypeTable:
    """One type's resources for a proxy, sorted by name, with their version. Shared by proxies (and revisions)
    whose resources of that type are the same."""

    resources: Mapping[str, XdsResource]
    version: str

    @staticmethod
    def of(resources: Iterable[XdsResource]) -> TypeTable:
        by_name = {r.name: r for r in sorted(resources, key=lambda r: r.name)}  # a repeated name: the last wins
        return TypeTable(by_name, _type_version(by_name))

    @staticmethod
    def sorted(by_name: dict[str, XdsResource]) -> TypeTable:
        """From resources by name already in name order."""
        return TypeTable(by_name, _type_version(by_name))


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Resources by type URL then name. `versions` are content hashes per type."""

    by_type: Mapping[str, Mapping[str, XdsResource]]
    versions: Mapping[str, str]

    @staticmethod
    def of(resources: Iterable[XdsResource]) -> Snapshot:
        grouped: dict[str, list[XdsResource]] = {t: [] for t in type_urls.ORDER}
        for res in resources:
            grouped.setdefault(res.type_url, []).append(res)
        return Snapshot.from_tables({t: TypeTable.of(rs) for t, rs in grouped.items()})

    @staticmethod
    def from_tables(tables: Mapping[str, TypeTable]) -> Snapshot:
        by_type = {t: tables[t].resources if t in tables else {} for t in type_urls.ORDER}
        by_type.update({t: table.resources for t, table in tables.items()})
        return Snapshot(by_type=by_type, versions={t: tables[t].version if t in tables else _type_version({})
                                                   for t in by_type})

    def get(self, type_url: str) -> Mapping[str, XdsResource]:
        return self.by_type.get(type_url, {})

    @functools.cached_property
    def version(self) -> str:
        """One hash over all types: equal snapshots have equal versions. Computed once: the cache and the server
        compare it for every proxy on every publish."""
        return hashlib.sha256("".join(self.versions[t] for t in sorted(self.versions)).encode()).hexdigest()[:16]
