"""Serving xDS: the per-proxy snapshot cache, the ADS server (state of the world and incremental), node ids, bootstraps."""
