"""Review tools: `meshward diff` (what a policy change does to each proxy, for a pull request) and `meshward graph`
(the mesh's routing as a picture)."""
