"""A real InfluxDB 1.x server on a loopback port with all its data in a run dir."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from dciot.runtime.ports import free_port
from dciot.runtime.process import ManagedProcess

# Loopback requests must not go through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class InfluxError(RuntimeError):
    """InfluxDB answered with an HTTP error or an error inside the query results."""


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


class InfluxServer(ManagedProcess):
    """`influxd -config RUN_DIR/influxdb.conf` with meta/data/wal under run_dir.

    Both the HTTP port and the RPC (backup/restore) port are chosen in the constructor, so
    a restart after `stop()`/`kill()` serves the same data on the same ports. The RPC port
    is never the default 8088, which another influxd on the machine may hold.
    """

    name = "influxd"
    binary = "influxd"
    apt_package = "influxdb"
    log_filename = "influxd.log"
    http_timeout_s: float = 10.0

    def __init__(self, run_dir: Path, port: int | None = None, host: str = "127.0.0.1",
                 rpc_port: int | None = None, binary: str | None = None) -> None:
        super().__init__(run_dir, binary=binary)
        self.host = host
        self.port = port if port is not None else free_port(host)
        if rpc_port is None:
            rpc_port = free_port(host)
            while rpc_port == self.port:
                rpc_port = free_port(host)
        self.rpc_port = rpc_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.run_dir / "influxdb.conf"

    def config_text(self) -> str:
        root = self.run_dir.resolve()
        return "\n".join([
            # Upstream spells the switch `reporting-disabled`; Debian's 1.6 build only knows
            # `reporting-enabled`. Unknown keys are ignored, so set both.
            "reporting-disabled = true",
            "reporting-enabled = false",
            f"bind-address = {_toml_str(f'{self.host}:{self.rpc_port}')}",
            "",
            "[meta]",
            f"  dir = {_toml_str(str(root / 'meta'))}",
            "  logging-enabled = false",
            "",
            "[data]",
            f"  dir = {_toml_str(str(root / 'data'))}",
            f"  wal-dir = {_toml_str(str(root / 'wal'))}",
            '  wal-fsync-delay = "0s"',
            "  query-log-enabled = false",
            "",
            "[monitor]",
            "  store-enabled = false",
            "",
            "[http]",
            "  enabled = true",
            f"  bind-address = {_toml_str(f'{self.host}:{self.port}')}",
            "  log-enabled = false",
            "",
            "[continuous_queries]",
            "  log-enabled = false",
            "",
            "[logging]",
            '  level = "warn"',
            "  suppress-logo = true",
            "",
        ])

    def _prepare(self) -> None:
        self.config_path.write_text(self.config_text(), encoding="utf-8")

    def _command(self, executable: str) -> list[str]:
        return [executable, "-config", str(self.config_path.resolve())]

    def _ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port), (self.host, self.rpc_port)]

    def _is_ready(self) -> bool:
        try:
            with _OPENER.open(f"{self.url}/ping", timeout=1.0) as resp:
                return resp.status == 204
        except (OSError, http.client.HTTPException):
            return False

    def start(self, timeout_s: float = 30.0) -> None:
        """Write influxdb.conf, spawn influxd, return once GET /ping answers 204."""
        super().start(timeout_s)

    # -- HTTP API -------------------------------------------------------------------------

    def _request(self, method: str, path: str, params: dict[str, str],
                 body: bytes | None = None) -> bytes:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", "text/plain; charset=utf-8")
        try:
            with _OPENER.open(req, timeout=self.http_timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace").strip()
            raise InfluxError(f"{method} {path} -> HTTP {exc.code}: {detail}") from exc

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL; return the parsed JSON (timestamps as epoch milliseconds).

        SELECT/SHOW go as GET; anything else (CREATE, DROP, ...) as POST, which InfluxDB
        requires for statements that change data.
        """
        params = {"q": q, "epoch": "ms"}
        if db is not None:
            params["db"] = db
        read_only = q.lstrip().upper().startswith(("SELECT", "SHOW"))
        raw = self._request("GET" if read_only else "POST", "/query", params)
        result: dict[str, Any] = json.loads(raw)
        if "error" in result:
            raise InfluxError(f"query {q!r}: {result['error']}")
        for statement in result.get("results", []):
            if "error" in statement:
                raise InfluxError(f"query {q!r}: {statement['error']}")
        return result

    def rows(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        """The first statement's rows as dicts (column -> value), every series together."""
        rows: list[dict[str, Any]] = []
        for series in self.query(q, db=db)["results"][0].get("series", []):
            tags = series.get("tags", {})
            rows += [{**tags, **dict(zip(series["columns"], v, strict=True))}
                     for v in series["values"]]
        return rows

    def create_database(self, name: str) -> None:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        self.query(f'CREATE DATABASE "{escaped}"')

    def write_lines(self, db: str, lines: str) -> None:
        """POST line protocol with millisecond timestamps."""
        self._request("POST", "/write", {"db": db, "precision": "ms"}, lines.encode("utf-8"))
