"""Emitted resources remembered by model value, so a resource is built and serialized once however many proxies
(and revisions) contain it.

Model objects are frozen dataclasses, so equal values hash equal: two sidecars of one namespace share their
outbound clusters, and after a commit that changed one VirtualService every other resource is found here instead
of being rebuilt. Sharing the very same `XdsResource` also shares its serialized bytes in memory.

The memo is generational (compiler.reuse.generations), which bounds its memory to two revisions.
"""

from __future__ import annotations

from compiler.reuse.generations import Generations


class EmitMemo(Generations):
    """Values (emitted resources, shared virtual host messages, per-type tables, consistency findings) by the model
    value they came from (compiler.reuse.generations: two revisions of memory at most)."""
