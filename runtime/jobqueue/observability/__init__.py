"""Metrics, tracing and logging: one module each, shared by api, worker and reaper.

- `metrics`: Prometheus objects (base units, `_total` counters, bounded
  labels), `serve(port)` for worker and reaper, `render()` for the API's
  /metrics, and `refresh_depth(rows)` fed by a periodic task from
  `db.stats.depth()`, never per scrape.
- `tracing`: one trace per job. The API's `submit_job` span context is
  injected into the job row (`NewJob.trace_context`); the worker's spans
  name it as parent, so they join the trace across processes. The SDK is
  only loaded when OTEL_* configures an exporter; otherwise every call is a
  cheap no-op.
- `logging`: structlog with contextvars; `bind_job` at the job boundary.

Import the modules and call through them:
`from jobqueue.observability import metrics, tracing, logging as obslog`.
"""
