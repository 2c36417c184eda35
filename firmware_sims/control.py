"""Loopback HTTP/1.1 JSON control API of the simulators, and its urllib client.

    GET  /state  -> 200 {"time": ISO simulated time,
                         "devices": {"<device>": {"profile": id, "muted": bool,
                                                  "values": {point: value},
                                                  "forced": {point: value}}}}
    POST /fault  {"port": int, "unit": int, "action": "force"|"release"|"release_all"|
                  "set_state"|"mute"|"unmute", "point": str?, "value": any?}
                 or {"device": "<device>", "action": ..., "point": str?, "value": any?}
                 with a device named as firmware_sims/simulation.py says ("15020:3",
                 "rtu-fire:2", "uitd-fire:131082", "lora-water:26011BDA")
                 -> 200 {"time", "device", "profile", "muted", "values", "forced"}
                 -> 400 {"error": "..."} for an unknown device, point, state or action, or a
                    value the point cannot hold

One request per connection (responses carry `Connection: close`); bodies need Content-Length.
There is no authentication: bind it to loopback only. Stdlib only (asyncio streams, urllib).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from firmware_sims.errors import ControlError, FaultError, ListenError
from firmware_sims.simulation import Simulation

REQUEST_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 64 * 1024
MAX_HEADERS = 64
CLIENT_TIMEOUT_S = 10.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 413: "Payload Too Large"}
_ROUTES = {"/state": "GET", "/fault": "POST"}


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlServer:
    """Serves GET /state and POST /fault for `simulation` on host:port."""

    def __init__(self, host: str, port: int, simulation: Simulation) -> None:
        self.host = host
        self.port = port
        self.simulation = simulation
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (returns once the port accepts connections); ListenError if it cannot."""
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as err:
            raise ListenError(f"control API cannot listen on {self.host}:{self.port}: "
                              f"{err}") from err

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            try:
                status, body = await asyncio.wait_for(self._respond(reader), REQUEST_TIMEOUT_S)
            except TimeoutError:
                status, body = 408, {"error": "request not received in time"}
            except _HttpError as err:
                status, body = err.status, {"error": str(err)}
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                status, body = 400, {"error": "malformed HTTP request"}
            payload = json.dumps(body, ensure_ascii=False).encode()
            head = (f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                    f"Content-Type: application/json; charset=utf-8\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("ascii") + payload)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
        method, path, headers = await _read_head(reader)
        route = _ROUTES.get(path)
        if route is None:
            raise _HttpError(404, f"no such path {path}; use GET /state or POST /fault")
        if method != route:
            raise _HttpError(405, f"{path} takes {route}")
        if method == "GET":
            return 200, self.simulation.state()
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY_BYTES:
            raise _HttpError(413, f"body over {MAX_BODY_BYTES} bytes")
        try:
            request = json.loads(await reader.readexactly(length) if length else b"")
        except json.JSONDecodeError as err:
            raise _HttpError(400, f"body is not JSON: {err}") from err
        if not isinstance(request, dict):
            raise _HttpError(400, "body must be a JSON object")
        try:
            return 200, self.simulation.apply(request)
        except FaultError as err:
            raise _HttpError(400, str(err)) from err


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    """Request line and headers (names lower-cased); ValueError when malformed."""
    request_line = (await reader.readuntil(b"\r\n")).decode("latin-1").strip()
    method, target, _version = request_line.split(" ")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = (await reader.readuntil(b"\r\n")).decode("latin-1").strip()
        if not line:
            return method, target.split("?", 1)[0], headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    raise _HttpError(400, f"more than {MAX_HEADERS} headers")


def _call(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_S) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as err:
        try:
            message = str(json.loads(err.read()).get("error", err.reason))
        except (ValueError, AttributeError):
            message = str(err.reason)
        raise ControlError(err.code, message) from err


def get_state(control_url: str) -> dict[str, Any]:
    """GET /state of the simulators at `control_url` (e.g. http://127.0.0.1:15099)."""
    return _call(urllib.request.Request(control_url.rstrip("/") + "/state"))


def send_fault(control_url: str, **fields: object) -> dict[str, Any]:
    """POST /fault with `fields` (port and unit, or device; action, point?, value?); return
    the device's new state. ControlError (with .status 400 and the server's message) if it was
    refused; OSError (urllib.error.URLError) if the control API cannot be reached."""
    body = json.dumps(fields).encode()
    request = urllib.request.Request(control_url.rstrip("/") + "/fault", data=body,
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
    return _call(request)
