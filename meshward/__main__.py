"""`python -m meshward`: the same as the `meshward` console script."""

from meshward import cli

cli.entry()
