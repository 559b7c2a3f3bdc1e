"""meshward reconciler: all the I/O around the pure compiler (git, cluster watches, ADS, admin HTTP)."""
