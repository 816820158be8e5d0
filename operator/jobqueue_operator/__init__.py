"""The jobqueue Kubernetes operator (kopf). Run: `kopf run -m jobqueue_operator`."""
