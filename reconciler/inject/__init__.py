"""Sidecar injection: `meshward inject` (manifests in, manifests out) and the admission webhook of `serve`."""
