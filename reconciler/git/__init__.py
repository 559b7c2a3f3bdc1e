"""The git side: following a repository, exporting commits, verifying their signatures, push webhooks."""
