"""Input models: pydantic classes for every kind meshward reads, named after Istio's proto messages.

One module per kind (see `compiler.kinds` for the registry); shared message types live in `common`.
"""
