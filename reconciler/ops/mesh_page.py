"""The mesh page (`GET /mesh`): one self-contained HTML file, `mesh_page.html`, shipped as package data. No CDN and
no build step (a reconciler often runs where there is no internet); its script draws /mesh/graph as SVG and polls it.

It is served with a Content-Security-Policy that lets only its own inline script and style run (by their hashes) and
lets it fetch only from its own origin, so that nothing it shows (host names, header matches: text from the policy
repository) can run as script or send anything elsewhere, even if a bug put it into markup.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.resources
import re

HTML = "mesh_page.html"
_BLOCKS = {"script-src": re.compile(rb"<script>(.*?)</script>", re.DOTALL),
           "style-src": re.compile(rb"<style>(.*?)</style>", re.DOTALL)}


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    headers: tuple[tuple[str, str], ...]


def load() -> Page:
    body = importlib.resources.files(__package__).joinpath(HTML).read_bytes()
    return Page(body, (("Content-Security-Policy", policy(body)), ("X-Content-Type-Options", "nosniff"),
                       ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store")))


def policy(html: bytes) -> str:
    """The page's CSP: nothing by default; its own inline blocks by hash (CSP3 hash-source); fetches to itself."""
    sources = {directive: " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(block).digest()).decode()}'"
                                   for block in pattern.findall(html)) or "'none'"
               for directive, pattern in _BLOCKS.items()}
    return ("default-src 'none'; " + "; ".join(f"{d} {s}" for d, s in sources.items())
            + "; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
