"""The cluster side: the Kubernetes service registry, TLS credentials, and the cluster state they make."""
