"""The embedded server never outlives the process that started it: pg_ctl
detaches the postmaster, so without a watchdog a killed test run or
`jobqueue dev` would leave a server (and its folder) behind."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.procs import REPO
from tests.support.wait import eventually_sync

OWNER = """
import time
from jobqueue.embedded import EmbeddedPostgres
pg = EmbeddedPostgres(durable=False)
pg.start()
print(pg.port, pg.data_dir, flush=True)
time.sleep(600)
"""


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_killed_owner_takes_its_server_and_folder_with_it() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True,
                             cwd=REPO)
    try:
        assert owner.stdout is not None
        port_text, folder = owner.stdout.readline().split()
        port, data_dir = int(port_text), Path(folder)
        assert listening(port) and data_dir.exists()
        owner.kill()  # no cleanup() runs
        owner.wait(10)
        with contextlib.suppress(AssertionError):  # the asserts below say which outlived it
            eventually_sync(lambda: not (listening(port) or data_dir.exists()), timeout=30,
                            interval=0.2, what="the server and its folder gone")
        assert not listening(port), "the server outlived its owner"
        assert not data_dir.exists(), "the data folder outlived its owner"
    finally:
        if owner.poll() is None:
            owner.kill()
