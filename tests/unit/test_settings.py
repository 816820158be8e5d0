"""`RuntimeSettings`: the environment under the command line's flags, one
section at a time."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobqueue.cli import build_parser
from jobqueue.commands.reaper import settings_from as reaper_settings
from jobqueue.commands.worker import settings_from as worker_settings
from jobqueue.settings import RuntimeSettings


def test_a_flag_wins_over_the_environment_and_none_means_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBQUEUE_WORKER_CONCURRENCY", "7")
    assert RuntimeSettings(worker={"concurrency": None}).worker.concurrency == 7
    assert RuntimeSettings(worker={"concurrency": 3}).worker.concurrency == 3


def test_a_section_is_read_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_WORKER_CONCURRENCY", "abc")
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/x")
    settings = RuntimeSettings()
    assert settings.database.dsn() == "postgresql://localhost/x"
    with pytest.raises(ValidationError, match="concurrency"):
        _ = settings.worker


def test_an_unknown_section_is_refused() -> None:
    with pytest.raises(TypeError, match="workers"):
        RuntimeSettings(workers={"concurrency": 1})


def test_conventional_names_are_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_HANDLERS", "my.handlers")
    monkeypatch.setenv("KUBECONFIG", "/tmp/kubeconfig")
    monkeypatch.setenv("JOBQUEUE_TENANT", "acme")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    settings = RuntimeSettings()
    assert (settings.reaper.kubernetes_service_host,
            settings.reaper.kubernetes_service_port) == ("10.0.0.1", 6443)
    assert settings.worker.handlers == "my.handlers"
    assert settings.reaper.kubeconfig == "/tmp/kubeconfig"
    assert settings.cli.tenant == "acme"


def test_worker_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_WORKER_QUEUE", "from-env")
    monkeypatch.setenv("JOBQUEUE_LOG_FORMAT", "console")
    args = build_parser("worker").parse_args(
        ["worker", "--concurrency", "2", "--poll-only", "--log-level", "DEBUG"]
    )
    settings = worker_settings(args)
    assert (settings.worker.queue, settings.worker.concurrency) == ("from-env", 2)
    assert settings.database.listen is False
    assert (settings.log.format, settings.log.level) == ("console", "DEBUG")


def test_reaper_leader_lease_flag_and_its_deprecated_alias(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBQUEUE_REAPER_LEASE_NAME", "from-env")
    parser = build_parser("reaper")
    new = reaper_settings(parser.parse_args(["reaper", "--leader-lease-seconds", "4"]))
    assert new.reaper.leader_lease_seconds == 4
    assert new.reaper.lease_name == "from-env"
    assert capsys.readouterr().err == ""

    old = reaper_settings(parser.parse_args(["reaper", "--lease-seconds", "3"]))
    assert old.reaper.leader_lease_seconds == 3
    assert "--lease-seconds is deprecated" in capsys.readouterr().err
