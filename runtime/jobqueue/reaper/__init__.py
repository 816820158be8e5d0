"""The reaper: takes back expired leases, moves finished jobs to history and
drops its days past retention, and fires schedules, as the one elected
leader among its replicas.

`reaper` holds `run_once()` and its loop; `leader` the electors (a row in
Postgres, or a coordination.k8s.io Lease); `kube` the small Kubernetes API
client the Lease elector needs.
"""
