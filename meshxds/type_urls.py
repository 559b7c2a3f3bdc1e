"""xDS type URLs, in one place. Order matters: it is the ADS make-before-break order (xDS protocol, "Eventual
consistency considerations"): clusters, then endpoints, then listeners, then routes; secrets first of all since
clusters and listeners reference them."""

from __future__ import annotations

SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

# Push order for ADS.
ORDER: tuple[str, ...] = (SECRET, CLUSTER, ENDPOINT, LISTENER, ROUTE)

SHORT_NAMES: dict[str, str] = {SECRET: "secrets", CLUSTER: "clusters", ENDPOINT: "endpoints",
                               LISTENER: "listeners", ROUTE: "routes"}
