"""`meshward test`: routing unit tests kept beside the policy, judged by real Envoy.

A test file (`*_test.yaml`, in istio-config-validator's format plus meshward's own keys) says what a request should
meet: a destination, a redirect, a rewrite... Each proxy the tests need is compiled as `serve` would serve it, run in
a real Envoy whose listeners and upstream endpoints (only those) are rebound to this machine, and sent the requests;
what Envoy did (its access log, and echo backends that report what they received) is compared with what the test
expects. The route tables are the compiled ones, unchanged.

`cases` reads the test files (`lines` locates their parts), `run` ties a run together, `envoys` runs the proxies,
`echo` the backends, `judge` compares (`stats` bounds a weighted split), `coverage` says which VirtualService
routes some test reached, `report` writes the formats. The package is a client of the compiler (and of
`reconciler.ops.envoy_process`); neither imports it. Istio's simulation tests (tests/conformance) run on it too.
"""
