"""The jobqueue Kubernetes operator (kopf).

Run it with `kopf run --all-namespaces -m jobqueue_operator`, or
`python -m jobqueue_operator` / `jobqueue-operator` (cluster-wide).
Importing the package registers the handlers with kopf's default registry.
"""

from jobqueue_operator import handlers as handlers
