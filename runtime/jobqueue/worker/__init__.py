"""The worker: leases jobs of one queue, runs their handlers, acks the results.

`handlers` is the user-facing API (`@handler`, `JobContext`), `builtin` the
handlers every worker has, `runner` one job's execution and `worker` the
supervised process loop (built from `jobqueue.process`).
"""
