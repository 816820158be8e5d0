"""The handler registry and decorator; module loading for --handlers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import jobqueue
from jobqueue.worker import handlers
from jobqueue.worker.handlers import JobContext, Registry


def test_decorator_registers_and_returns_the_function() -> None:
    reg = Registry()

    @handler_in(reg, "resize-image")
    async def resize(ctx: JobContext, data: dict[str, int]) -> dict[str, int]:
        return data

    found = reg.get("resize-image")
    assert found is not None
    assert found.fn is resize
    assert found.is_async
    assert "resize-image" in reg


def handler_in(reg: Registry, name: str):  # type: ignore[no-untyped-def]
    return handlers.handler(name, registry=reg)


def test_sync_functions_are_marked_for_a_thread() -> None:
    reg = Registry()

    @handlers.handler("blocking", registry=reg)
    def blocking(ctx: JobContext, data: object) -> None:
        return None

    found = reg.get("blocking")
    assert found is not None and not found.is_async


def test_a_second_function_for_a_taken_name_is_refused() -> None:
    reg = Registry()

    @handlers.handler("x", registry=reg)
    def one(ctx: JobContext, data: object) -> None: ...

    with pytest.raises(ValueError, match="already has a handler"):

        @handlers.handler("x", registry=reg)
        def two(ctx: JobContext, data: object) -> None: ...

    # Re-registering the same function (a module imported twice) is fine.
    reg.add("x", one)


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_job_type_names_are_bounded_like_the_column(name: str) -> None:
    with pytest.raises(ValueError, match="1 to 200 characters"):
        Registry().add(name, lambda ctx, data: None)


def test_parse_modules_trims_and_dedupes() -> None:
    assert handlers.parse_modules(" a.b, ,c,a.b ") == ["a.b", "c"]
    assert handlers.parse_modules("") == []


def test_load_imports_builtins_and_named_modules(tmp_path: Path) -> None:
    (tmp_path / "my_jobs_mod.py").write_text(
        "from jobqueue import handler\n"
        "@handler('my-job')\n"
        "async def my_job(ctx, data):\n"
        "    return {'ok': True}\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        reg = handlers.load("my_jobs_mod")
    finally:
        sys.path.remove(str(tmp_path))
    assert {"echo", "sleep", "my-job"} <= set(reg.names())


def test_load_names_the_module_that_fails() -> None:
    with pytest.raises(handlers.HandlerImportError, match="no_such_module_xyz"):
        handlers.load("no_such_module_xyz")


def test_public_names_are_exported_from_the_package() -> None:
    assert jobqueue.handler is handlers.handler
    assert jobqueue.JobContext is handlers.JobContext
    with pytest.raises(AttributeError):
        _ = jobqueue.no_such_name  # type: ignore[attr-defined]
