"""The embedded server never outlives the process that started it: pg_ctl
detaches the postmaster, so without a watchdog a killed test run or
`jobqueue dev` would leave a server (and its folder) behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.procs import REPO

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
        deadline = time.monotonic() + 30
        while (listening(port) or data_dir.exists()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not listening(port), "the server outlived its owner"
        assert not data_dir.exists(), "the data folder outlived its owner"
    finally:
        if owner.poll() is None:
            owner.kill()
