"""Operating meshward: admin HTTP, metrics, status, and the local demo."""
