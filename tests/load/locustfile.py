"""Load test of a running deployment over HTTP (locust; not collected by
pytest: no test_ prefix, and locust is only in the `bench` extra).

    pip install -e '.[bench]'
    JOBQUEUE_TENANT=acme JOBQUEUE_API_KEY=jq_... \\
        locust -f tests/load/locustfile.py --host http://localhost:8000

The three kinds of client of the original design:
- SteadySubmitter: one job at a time, at a steady pace;
- BurstSubmitter: now and then a burst of batches (POST /v1/jobs/batch);
- IdempotentReplayer: submits a key, replays it several times, and fails
  the request unless every replay returns the same job (one job per key;
  docs/design.md, invariant 1).

The tenant's rate limit applies: give the load tenant a budget above the
rate you drive, or count the 429s locust reports as the limit working.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from locust import HttpUser, between, constant_pacing, task

TENANT = os.environ.get("JOBQUEUE_TENANT", "load")
API_KEY = os.environ.get("JOBQUEUE_API_KEY", "")
QUEUE = os.environ.get("JOBQUEUE_QUEUE", "default")
BATCH = int(os.environ.get("JOBQUEUE_LOAD_BATCH", "500"))


class _Authed(HttpUser):
    abstract = True
    token_expires = 0.0

    def on_start(self) -> None:
        self._login()

    def _login(self) -> None:
        r = self.client.post("/auth/token", json={"tenant_id": TENANT, "api_key": API_KEY},
                             name="/auth/token")
        r.raise_for_status()
        body = r.json()
        self.client.headers["Authorization"] = f"Bearer {body['access_token']}"
        # Renew a minute early; tokens default to an hour.
        self.token_expires = time.monotonic() + float(body.get("expires_in", 3600)) - 60

    def _fresh(self) -> None:
        if time.monotonic() > self.token_expires:
            self._login()

    def job(self, **extra: Any) -> dict[str, Any]:
        return {"type": "echo", "queue": QUEUE, "data": {"at": time.time()}, **extra}


class SteadySubmitter(_Authed):
    weight = 6
    wait_time = constant_pacing(0.1)

    @task
    def submit(self) -> None:
        self._fresh()
        self.client.post("/v1/jobs", json=self.job(),
                         headers={"Idempotency-Key": uuid.uuid4().hex}, name="/v1/jobs")


class BurstSubmitter(_Authed):
    weight = 1
    wait_time = between(5, 15)

    @task
    def burst(self) -> None:
        self._fresh()
        for _ in range(5):
            self.client.post("/v1/jobs/batch",
                             json={"jobs": [self.job() for _ in range(BATCH)]},
                             name="/v1/jobs/batch")


class IdempotentReplayer(_Authed):
    weight = 3
    wait_time = between(0.5, 1.5)

    @task
    def replay(self) -> None:
        self._fresh()
        key = f"replay-{uuid.uuid4().hex}"
        body = self.job(data={"key": key})
        seen: set[str] = set()
        for attempt in range(4):
            with self.client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key},
                                  name="/v1/jobs (replay)", catch_response=True) as r:
                if r.status_code not in (200, 201):
                    r.failure(f"status {r.status_code}")
                    return
                seen.add(r.json()["id"])
                if attempt and r.headers.get("Idempotent-Replayed") != "true":
                    r.failure("a replay was not marked Idempotent-Replayed")
                if len(seen) != 1:
                    r.failure(f"one key made {len(seen)} jobs: {sorted(seen)}")
                    return
