"""Incremental reuse, kept apart from the stages it serves: translate and emit compute; this package decides what
one revision (and one proxy) may take from another instead of computing it again.

- `generations`: a memo that lives two revisions (what the next build never asks for is dropped with it).
- `carry`: what one revision's translation hands to the next (index objects by content, results by the identity
  of their inputs, whole tables while their inputs are the same objects).
- `memo`: emitted resources by model value, shared by proxies and revisions.
- `tables`: sorted tables of per-item parts (a sidecar's outbound clusters) kept, or their unchanged items' parts
  kept and the tables patched.
- `recorded`: a result with the lookups made while computing it, kept while they find the same objects (a
  VirtualService's routes).
- `refill`: a table filled from shared uses (a route table's virtual hosts) refilled instead of built again.
- `patch`: one sorted table patched by identity diff instead of rebuilt (cluster tables, route tables, emitted
  type tables).

The stages are functions of their inputs that take their reuse as hooks, a small Protocol per stage
(compiler.emit.hooks, compiler.translate.hooks, compiler.translate.mesh.IndexReuse), and say only what a derived
result is made of (a `Recipe`); `Carry` and `EmitMemo` answer those hooks and this package decides what is still
valid. Nothing here imports translate or emit, so either may use it without depending on the other. Reuse must never show
in the output: tests/translate/test_incremental_fuzz.py checks that incremental builds equal cold ones byte for byte.
"""
