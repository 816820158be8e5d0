"""The worker: leases jobs of one queue, runs their handlers, acks the results.

`handlers` is the user-facing API (`@handler`, `JobContext`), `builtin` the
handlers every worker has, `backoff` the pure retry delay, `runner` one
job's execution and `worker` the supervised process loop.
"""
