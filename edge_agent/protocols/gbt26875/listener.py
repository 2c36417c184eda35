"""The monitoring-centre side of GB/T 26875.3: a TCP server that user information transmission
devices (UITDs) connect to, many at once.

Per connection: bytes are stream-decoded (codec.decode_stream resynchronises on '@@'); every
"send data" frame is answered with a confirm carrying its serial number (clause 6.3), and its
information objects are routed by (UITD source address, system type, system address, component
type, component address) to a configured device, whose points get the raw values with the
object's own time label (local time, converted with `utc_offset_h`).

Rejections are counted in `frames_rejected(protocol="gbt26875", reason=...)` and logged at most
once per 10 s per reason. Frames whose control unit was readable but that fail verification
(checksum, command byte, data unit) are denied so the UITD resends (clause 6.5); well-formed
frames from an unknown UITD or for an unknown component are confirmed (they were received
correctly; resending would not help) and counted. Connections that send nothing for
`idle_timeout_s` (UITDs send a heartbeat every 20-30 s) are closed; TCP keepalive is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from functools import partial

from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import ReadingSink
from edge_agent.protocols.gbt26875.codec import (
    AnalogValue,
    Command,
    ComponentState,
    Frame,
    FrameRejected,
    Header,
    InfoObject,
    Stamp,
    SystemState,
    decode_stream,
    decoded_fields,
    encode_frame,
    format_address,
    reply_header,
)

log = logging.getLogger(__name__)

PROTOCOL = "gbt26875"
DENIED = frozenset({"bad_checksum", "bad_command", "bad_data_unit", "bad_time"})
READ_BYTES = 4096

# (system type, system address, component type, component address); no component: the system
RouteKey = tuple[int, int, int | None, int | None]


@dataclass(frozen=True)
class Route:
    """Where one component's values go: the device and its points as (point name, field)."""

    device_id: str
    points: tuple[tuple[str, str], ...]


Routes = dict[int, dict[RouteKey, Route]]  # by UITD address


def route_key(obj: InfoObject) -> RouteKey | None:
    """The component (or system) an information object reports on; None: nothing to route."""
    if isinstance(obj, ComponentState | AnalogValue):
        return obj.system_type, obj.system_address, obj.component_type, obj.component_address
    if isinstance(obj, SystemState):
        return obj.system_type, obj.system_address, None, None
    return None


class _RejectLog:
    """Log a rejection reason at most once per interval, saying how many were suppressed."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, reason: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -self.interval_s) < self.interval_s:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        suppressed = self._suppressed.pop(reason, 0)
        suffix = f" ({suppressed} more like it suppressed)" if suppressed else ""
        log.warning("gbt26875 frame rejected: %s%s", message, suffix)


class Gbt26875Listener:
    """Receives frames from UITDs until cancelled; see the module docstring."""

    def __init__(self, host: str, port: int, routes: Routes, metrics: EdgeMetrics, *,
                 idle_timeout_s: float = 90.0, utc_offset_h: float = 8.0) -> None:
        self.host = host
        self.port = port
        self.routes = routes
        self.metrics = metrics
        self.idle_timeout_s = idle_timeout_s
        self.utc_offset_h = utc_offset_h
        self._ready = asyncio.Event()
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[object]] = {}
        self._log = _RejectLog()

    async def wait_ready(self) -> int:
        """Wait until the socket listens; return its port (useful with port 0)."""
        await self._ready.wait()
        return self.port

    async def run(self, sink: ReadingSink) -> None:
        server = await asyncio.start_server(partial(self._serve, sink), self.host, self.port)
        self.port = int(server.sockets[0].getsockname()[1])
        log.info("gbt26875 listening on %s:%d for %d UITDs", self.host, self.port,
                 len(self.routes))
        self._ready.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            await self._close_connections()

    async def _close_connections(self) -> None:
        """Close every connection and let its handler finish (a handler cancelled by the loop's
        shutdown instead would be logged as an error by asyncio)."""
        for writer in list(self._connections):
            writer.close()
        handlers = list(self._connections.values())
        if handlers:
            await asyncio.wait(handlers, timeout=5)

    async def _serve(self, sink: ReadingSink, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        handler = asyncio.current_task()
        assert handler is not None
        self._connections[writer] = handler
        log.info("gbt26875 connection from %s", peer)
        buf = bytearray()
        try:
            while chunk := await asyncio.wait_for(reader.read(READ_BYTES), self.idle_timeout_s):
                buf += chunk
                replies = self._consume(buf, sink, peer)
                if replies:
                    writer.write(b"".join(replies))
                    await writer.drain()
            log.info("gbt26875 connection from %s closed by the UITD", peer)
        except TimeoutError:
            log.info("gbt26875 connection from %s idle for %.0f s; closing", peer,
                     self.idle_timeout_s)
        except OSError as err:
            log.info("gbt26875 connection from %s lost: %s", peer, err)
        finally:
            self._connections.pop(writer, None)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _consume(self, buf: bytearray, sink: ReadingSink, peer: object) -> list[bytes]:
        """Decode every whole frame in `buf` (removing it); return the replies to send."""
        replies: list[bytes] = []
        while buf:
            try:
                frame, used = decode_stream(buf)
            except FrameRejected as err:
                del buf[:err.consumed]
                self._reject(err.reason, f"{err} (from {peer})")
                if err.header is not None and err.reason in DENIED:
                    replies.append(self._reply(err.header, Command.DENY))
                continue
            if frame is None:
                break
            del buf[:used]
            reply = self._handle(frame, sink, peer)
            if reply is not None:
                replies.append(reply)
        return replies

    def _handle(self, frame: Frame, sink: ReadingSink, peer: object) -> bytes | None:
        header = frame.header
        if header.command == Command.SEND_DATA:
            self._deliver(frame, sink)
            return self._reply(header, Command.CONFIRM)
        if header.command in (Command.CONTROL, Command.REQUEST):
            self._reject("unexpected_command", f"unexpected_command: command "
                         f"{header.command} from a UITD (from {peer})")
            return self._reply(header, Command.DENY)
        return None  # confirm/response/deny answer requests this centre never sends

    def _deliver(self, frame: Frame, sink: ReadingSink) -> None:
        source = frame.header.source
        components = self.routes.get(source)
        if components is None:
            self._reject("unknown_address", f"unknown_address: UITD {format_address(source)} "
                         "is not configured")
            return
        for obj in frame.unit.objects if frame.unit else ():
            key = route_key(obj)
            if key is None:
                continue
            route = components.get(key)
            if route is None:
                self._reject("unknown_component", f"unknown_component: UITD "
                             f"{format_address(source)} component {key} is not configured")
                continue
            fields = decoded_fields(obj)
            raw = {name: fields[field] for name, field in route.points if field in fields}
            if raw:
                at = obj.at  # type: ignore[union-attr]  # routed objects carry a time label
                sink(route.device_id, raw, at.to_epoch_ms(self.utc_offset_h))

    def _reply(self, header: Header, command: Command) -> bytes:
        now = Stamp.from_epoch_ms(time.time_ns() // 1_000_000, self.utc_offset_h)
        return encode_frame(reply_header(header, command, now))

    def _reject(self, reason: str, message: str) -> None:
        self.metrics.frames_rejected(protocol=PROTOCOL, reason=reason).inc()
        self._log.warning(reason, message)
