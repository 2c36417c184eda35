"""InfluxDB HTTP writer: line protocol over one persistent connection, v1 or v2 write API.

v1 (InfluxDB 1.x, and the 1.x compatibility API of 2.x/3.x): ``POST /write?db=..&precision=ms``
v2 (InfluxDB 2.x/3.x): ``POST /api/v2/write?org=..&bucket=..&precision=ms`` with a token.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse

from cloud_broker.config import InfluxConfig


class WriteError(Exception):
    """A write that failed; `retryable` is False when InfluxDB refused the data itself."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class InfluxWriter:
    """Writes batches of lines; not thread-safe (one writer per flushing thread)."""

    def __init__(self, config: InfluxConfig, password: str | None = None,
                 token: str | None = None) -> None:
        self.config = config
        url = urllib.parse.urlsplit(config.url)
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._https else 8086)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if config.api == "v1":
            params = {"db": config.database, "precision": "ms"}
            self._path = "/write?" + urllib.parse.urlencode(params)
            if config.username:
                cred = f"{config.username}:{password or ''}".encode()
                self._headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        else:
            params = {"org": config.org or "", "bucket": config.bucket or "", "precision": "ms"}
            self._path = "/api/v2/write?" + urllib.parse.urlencode(params)
            if token:
                self._headers["Authorization"] = f"Token {token}"
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.config.timeout_s)
        return self._conn

    def _request(self, method: str, path: str, body: bytes,
                 headers: dict[str, str]) -> tuple[int, bytes]:
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            raise WriteError(f"InfluxDB at {self.config.url} unreachable: {err}", True) from err

    def write(self, lines: list[str]) -> None:
        """Write the lines as one request; raise WriteError when they were not all stored."""
        if not lines:
            return
        body = ("\n".join(lines) + "\n").encode("utf-8")
        status, text = self._request("POST", self._path, body, self._headers)
        if status in (200, 204):
            return
        detail = text[:300].decode("utf-8", "replace")
        # 400: bad data (e.g. a field type conflict); InfluxDB kept the valid points. Retrying
        # cannot help. 413: too large, 401/403: credentials, 404: no such db/bucket, 5xx: server.
        raise WriteError(f"InfluxDB answered {status}: {detail}", retryable=status != 400)

    def create_database(self) -> None:
        """v1 only: make sure the database exists (idempotent)."""
        if self.config.api != "v1":
            return
        q = urllib.parse.urlencode({"q": f'CREATE DATABASE "{self.config.database}"'})
        headers = {k: v for k, v in self._headers.items() if k == "Authorization"}
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, text = self._request("POST", "/query", q.encode(), headers)
        if status != 200 or "error" in json.loads(text or b"{}").get("results", [{}])[0]:
            raise WriteError(f"CREATE DATABASE failed: {status} {text[:200]!r}", True)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
