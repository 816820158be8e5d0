"""Request and response bodies of the limit routes (docs/design.md, invariant 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

from jobqueue import limits
from jobqueue.limits import Limit, LimitSpec, Per, Rate

PathKey = Annotated[str, Field(min_length=1, max_length=limits.MAX_PATH_ELEMENT)]


class RateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: StrictInt = Field(ge=1, le=limits.MAX_COUNT, description="job starts per period")
    period_seconds: StrictFloat = Field(
        ge=limits.MIN_PERIOD_SECONDS, le=limits.MAX_PERIOD_SECONDS, examples=[1.0])
    burst: StrictInt = Field(
        0, ge=0, le=limits.MAX_COUNT,
        description="more a quiet key may start at once: any window of one period "
        "holds at most count + burst starts of a key")


class LimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per: Per = Field(
        Per.QUEUE, description="queue: one key for the whole queue; tenant: one per tenant; "
        "data: one per value at `path` in the job's data (missing counts as \"\")")
    path: list[PathKey] | None = Field(
        None, min_length=1, max_length=limits.MAX_PATH_DEPTH, examples=[["customer", "id"]],
        description="keys into the job's data; exactly when per is data")
    rate: RateIn | None = None
    max_concurrent: StrictInt | None = Field(
        None, ge=1, le=limits.MAX_COUNT, description="leased or running jobs of a key at once")

    @model_validator(mode="after")
    def _consistent(self) -> LimitIn:
        if self.rate is None and self.max_concurrent is None:
            raise ValueError("a limit needs a rate, a max_concurrent, or both")
        if (self.per is Per.DATA) != (self.path is not None):
            raise ValueError("path is given exactly when per is data")
        return self

    def to_spec(self, name: str) -> LimitSpec:
        rate = self.rate
        return LimitSpec(
            name=name, per=self.per, path=None if self.path is None else tuple(self.path),
            rate=None if rate is None else Rate(rate.count, rate.period_seconds, rate.burst),
            max_concurrent=self.max_concurrent,
        )


class RateOut(BaseModel):
    count: int
    period_seconds: float
    burst: int


class LimitOut(BaseModel):
    queue: str
    name: str
    per: Per
    path: list[str] | None
    rate: RateOut | None
    max_concurrent: int | None
    owner: str | None = Field(description="the JobQueue that declares it; null: the API's")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, found: Limit) -> LimitOut:
        s = found.spec
        rate = None if s.rate is None else RateOut(
            count=s.rate.count, period_seconds=s.rate.period_seconds, burst=s.rate.burst)
        return cls(
            queue=found.queue, name=s.name, per=s.per,
            path=None if s.path is None else list(s.path), rate=rate,
            max_concurrent=s.max_concurrent, owner=found.owner,
            created_at=found.created_at, updated_at=found.updated_at,
        )


class LimitList(BaseModel):
    limits: list[LimitOut]
