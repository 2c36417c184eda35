"""The InfluxDB writer's v2 API (InfluxDB 2.x/3.x) against a loopback HTTP stand-in that records
what it receives (no v2 server can be installed here; v1 runs on real influxd in tests/e2e),
and how answers map to retryable or final errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from cloud_broker.config import InfluxConfig
from cloud_broker.ingest.writer import InfluxWriter, WriteError


class _Recorder(BaseHTTPRequestHandler):
    status = 204
    seen: ClassVar[list[tuple[str, dict[str, list[str]], str, bytes]]] = []

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((url.path, parse_qs(url.query),
                                self.headers.get("Authorization", ""), body))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def stand_in() -> Iterator[type[_Recorder]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "status": 204})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def _writer(url: str) -> InfluxWriter:
    config = InfluxConfig(url=url, api="v2", org="dongchang", bucket="iot/raw")
    return InfluxWriter(config, token="tok-123")


def test_v2_write_request(stand_in: type[_Recorder]) -> None:
    writer = _writer(stand_in.url)  # type: ignore[attr-defined]
    writer.write(["m,device=a f=1.5 1700000000000", "m,device=b f=2i 1700000000001"])
    writer.write(["m,device=a f=2.5 1700000000002"])  # same connection, second request
    (path, query, auth, body), second = stand_in.seen
    assert path == "/api/v2/write"
    assert query == {"org": ["dongchang"], "bucket": ["iot/raw"], "precision": ["ms"]}
    assert auth == "Token tok-123"
    assert body == b"m,device=a f=1.5 1700000000000\nm,device=b f=2i 1700000000001\n"
    assert second[3] == b"m,device=a f=2.5 1700000000002\n"


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, True), (404, True),
                                                   (413, True), (503, True)])
def test_answers_map_to_retryable_or_final(stand_in: type[_Recorder], status: int,
                                           retryable: bool) -> None:
    stand_in.status = status
    with pytest.raises(WriteError) as info:
        _writer(stand_in.url).write(["m f=1 1"])  # type: ignore[attr-defined]
    assert info.value.retryable is retryable and str(status) in str(info.value)


def test_unreachable_is_retryable() -> None:
    with pytest.raises(WriteError) as info:
        _writer("http://127.0.0.1:9").write(["m f=1 1"])
    assert info.value.retryable
