"""meshward compiler: Istio-style policy in, Envoy xDS out. Pure: no git, no network, no clock."""
