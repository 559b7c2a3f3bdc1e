"""Resource lists as xDS tables want them: one per name, sorted by name."""

from __future__ import annotations

from collections.abc import Sequence


def first_by_name(items: Sequence, key: str = "name") -> tuple:  # type: ignore[type-arg]
    """One item per name (the first given wins, as the inbound side wins over the outbound), sorted by name."""
    out: dict[str, object] = {}
    for item in items:
        out.setdefault(getattr(item, key), item)
    return tuple(out[k] for k in sorted(out))
