"""What the compiler produces and the reconciler serves: xDS resources with the references between them, snapshots
of them per proxy, type URLs, and the protobuf wire format both sides write by hand.

Neither side owns it, so neither reaches into the other: the emitter (compiler.emit) builds `XdsResource`s and
`Snapshot`s, the snapshot cache and the ADS sessions (reconciler) read them. Like go-control-plane's
`pkg/cache/types` and `pkg/cache/v3` (Snapshot, `Consistent()`, `GetResourceReferences`), it imports neither.
"""
