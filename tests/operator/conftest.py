"""Fixtures for operator tests that need a real Kubernetes API (see tests/envtest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.envtest import ControlPlane, MissingTestbinError, find_testbin


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A started etcd + kube-apiserver shared by the whole session.

    Fails (never skips) when the binaries are missing: run ``hack/testbin.sh``.
    Nothing global is changed: use ``control_plane.kubeconfig_path`` (or
    ``control_plane.env()`` for child processes) explicitly.
    """
    problem: str | None = None
    try:
        find_testbin()
    except MissingTestbinError as exc:
        problem = str(exc)
    if problem is not None:  # outside `except`: no chained traceback noise
        pytest.fail(problem, pytrace=False)
    with ControlPlane() as cp:
        yield cp
