"""The process kit: the shape every jobqueue process is built from.

- `service`: a background service is `run_once()` plus `run_forever`, the
  one loop that paces it, retries failed passes with backoff and counts
  them (`database_errors_total{component}`, `service_errors_total{service}`);
- `supervise`: named tasks, the first that ends stops the process cleanly;
- `listen`: the one LISTEN keeper (worker wake-ups, API watchers);
- `depth`: the queue-depth gauges refresh (API and elected reaper);
- `connect`: opening the first pool, retried until it works or a stop;
- `backoff`: the pure, jittered delays all of the above wait.

Job state never reads a clock here: the database's `now()` stays the only
clock for leases, retries and expiry (docs/design.md, invariant 4). Pauses
go through `Service.wait`, so a test steps a service with `run_once()`
instead of sleeping.
"""
