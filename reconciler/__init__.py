"""meshward reconciler: all the I/O around the pure compiler, by concern as go-control-plane lays it out: `git/`
(the repository), `kube/` (the cluster), `xds/` (snapshot cache and ADS), `ops/` (admin, metrics, status, demo);
the loop that joins them (`loop`, `compose`, `resolver`) and `serve`, which wires them, at the top, with
`gcpause`, the cyclic GC pause a process that runs the compiler holds around it. The resources it serves and their
snapshots are `meshxds`'s, shared with the compiler."""
