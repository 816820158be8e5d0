"""A local OTLP/HTTP endpoint that accepts trace exports and throws them
away, so a benchmark pays the real cost of tracing (spans built, batched,
encoded, POSTed) without a collector. Listens on 127.0.0.1 only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        server: Sink = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests += 1
            server.bytes += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Sink(ThreadingHTTPServer):
    requests = 0
    bytes = 0
    lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


@contextmanager
def running() -> Iterator[Sink]:
    sink = Sink(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=sink.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()
