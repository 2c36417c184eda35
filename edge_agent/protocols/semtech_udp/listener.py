"""The `semtech_udp` listener: a UDP port that LoRa gateways' packet forwarders push to.

Per datagram: reject it unread when longer than `max_datagram_bytes`; decode it (codec.py);
answer PUSH_DATA with PUSH_ACK and PULL_DATA with PULL_ACK at once (the protocol asks the
server to acknowledge before processing; a PULL_DATA also tells where the gateway takes
downlinks). Per rxpk entry of a PUSH_DATA:

    parse rxpk (base64, size, CRC status) -> parse the data frame (lorawan.py)
    -> find the sessions with its DevAddr -> frame counter + MIC (check_uplink, state unchanged)
    -> deduplicate copies from several gateways (dedup.py, `dedup_window_ms`)
    -> when the window closes: check again, store the counter (state.py), decrypt,
       decode by the profile (payload.py), hand raw values to the sink

A join-request of a configured OTAA device (otaa.py) is deduplicated the same way and answered
once, with a join-accept in a PULL_RESP through the gateway that heard it best, timed for RX1.

Every rejection is counted as `frames_rejected{protocol="lorawan", reason}` (the codecs'
labels plus `oversized`, `unknown_gateway`, `bad_crc`, `unknown_dev_addr`, `unknown_dev_eui`,
`replayed_dev_nonce`, `unexpected_fport`, `no_downlink_path`, `downlink_rejected`) and logged at
most once per 10 s per reason; the listener goes on. Frames without FPort or with FPort 0 (MAC
commands only) advance the counter and carry no reading.

Apart from join-accepts the listener never transmits: no ACK for confirmed uplinks and no
answer to MAC commands.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import cast

from device_profiles.schema import Profile
from edge_agent.errors import FrameError
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import ReadingSink
from edge_agent.protocols.semtech_udp.codec import (
    DatagramError,
    PullData,
    PullResp,
    PushData,
    RxPacket,
    TxAck,
    ack_for,
    decode_datagram,
    encode_pull_resp,
    parse_rxpk,
)
from edge_agent.protocols.semtech_udp.config import SemtechUdpConfig
from edge_agent.protocols.semtech_udp.dedup import Deduplicator, Key, Reception, Uplink
from edge_agent.protocols.semtech_udp.join import (
    JoinRequest,
    join_accept_txpk,
    parse_join_request,
    rx1_frequency,
)
from edge_agent.protocols.semtech_udp.lorawan import (
    DataFrame,
    FcntState,
    LorawanError,
    check_uplink,
    decrypt_payload,
    parse_data_frame,
)
from edge_agent.protocols.semtech_udp.otaa import JoinServer, OtaaDevice
from edge_agent.protocols.semtech_udp.payload import decode_payload
from edge_agent.protocols.semtech_udp.rejections import Rejections
from edge_agent.protocols.semtech_udp.state import LorawanState, OtaaSession, session_key

log = logging.getLogger(__name__)

PROTOCOL = "lorawan"
MAX_KNOWN_GATEWAYS = 1024


@dataclass(frozen=True)
class Session:
    """A device session as the listener knows it (keys are never logged)."""

    device_id: str
    profile: Profile
    dev_addr: int
    nwk_s_key: bytes
    app_s_key: bytes

    @property
    def state_key(self) -> str:
        return session_key(self.device_id, self.dev_addr, self.nwk_s_key)

    def __repr__(self) -> str:
        return f"Session({self.device_id}, dev_addr={self.dev_addr:08x})"


@dataclass(frozen=True)
class _Data:
    session: Session
    frame: DataFrame


@dataclass(frozen=True)
class _Join:
    device: OtaaDevice
    request: JoinRequest


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, listener: SemtechUdpListener) -> None:
        self.listener = listener
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = self.listener.on_datagram(data, addr)
        except Exception:  # a bug must not close the socket: count, log, go on
            log.exception("LoRaWAN: datagram from %s not handled", addr[0])
            self.listener.metrics.frames_rejected(protocol=PROTOCOL, reason="internal_error").inc()
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error (a gateway went away?): %s", exc)


class SemtechUdpListener:
    """Receives LoRaWAN uplinks from packet forwarders and hands readings to a sink."""

    def __init__(self, settings: SemtechUdpConfig, sessions: list[Session],
                 metrics: EdgeMetrics, otaa_devices: list[OtaaDevice] | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.otaa_devices = otaa_devices or []
        self.metrics = metrics
        self.rejections = Rejections(metrics, PROTOCOL, log)
        self._by_addr: dict[int, list[Session]] = {}
        for session in sessions:
            self._by_addr.setdefault(session.dev_addr, []).append(session)
        self._state = LorawanState(settings.state_path)
        self._join = JoinServer(self.otaa_devices, self._state, int(settings.net_id, 16),
                                self._by_addr.__contains__)
        self._dedup: Deduplicator[_Data | _Join] = Deduplicator(settings.dedup_window_ms)
        self._pull_addr: dict[str, tuple[str, int]] = {}
        self._allowed = {g.lower() for g in settings.gateways}
        self._sink: ReadingSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def where(self) -> str:
        return f"udp://{self.settings.host}:{self.settings.port}"

    async def run(self, sink: ReadingSink) -> None:
        """Listen until cancelled; pending uplinks are delivered on the way out."""
        self._sink = sink
        self._loop = asyncio.get_running_loop()
        self._state.open()
        try:
            for device in self.otaa_devices:
                restored = self._state.otaa_session(device.device_id)
                if restored is not None:
                    self._install(device, restored)
            self._transport = await self._bind()
            await asyncio.Event().wait()
        finally:
            for uplink in self._dedup.pop_due(now_ms=2**63):
                self._process(uplink)
            if self._transport is not None:
                self._transport.close()
            self._state.close()

    async def _bind(self) -> asyncio.DatagramTransport:
        """Bind the port, retrying (logged once) while it is taken or unavailable."""
        assert self._loop is not None
        delay, failing = 1.0, False
        while True:
            try:
                transport, _ = await self._loop.create_datagram_endpoint(
                    lambda: _Endpoint(self), local_addr=(self.settings.host, self.settings.port))
            except OSError as err:
                if not failing:
                    log.error("cannot listen on %s: %s (retrying)", self.where, err)
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            log.info("LoRaWAN: listening for packet forwarders on %s (%d ABP, %d OTAA devices)",
                     self.where, len(self.sessions), len(self.otaa_devices))
            return transport

    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        """Handle one datagram; return the acknowledgement to send back, if any."""
        if len(data) > self.settings.max_datagram_bytes:
            self.rejections.reject("oversized", f"{len(data)} bytes from {addr[0]}")
            return None
        try:
            packet = decode_datagram(data)
        except DatagramError as err:
            self.rejections.reject(err.reason, f"{err} (from {addr[0]})")
            return None
        gateway = getattr(packet, "gateway", None)
        if self._allowed and gateway is not None and gateway not in self._allowed:
            self.rejections.reject("unknown_gateway", f"gateway {gateway}")
            return None
        if isinstance(packet, PullData):
            self._note_gateway(packet.gateway, addr)
        elif isinstance(packet, TxAck) and packet.error not in (None, "NONE"):
            self.rejections.reject("downlink_rejected", f"gateway {packet.gateway}: "
                                   f"{packet.error}")
        elif isinstance(packet, PushData):
            for entry in packet.rxpk:
                self._on_rxpk(packet.gateway, entry)
        return ack_for(packet)

    def _note_gateway(self, gateway: str, addr: tuple[str, int]) -> None:
        if gateway not in self._pull_addr and len(self._pull_addr) >= MAX_KNOWN_GATEWAYS:
            return
        if self._pull_addr.get(gateway) != addr:
            log.info("LoRaWAN: gateway %s pulls from %s:%d", gateway, addr[0], addr[1])
        self._pull_addr[gateway] = addr

    def _on_rxpk(self, gateway: str, entry: object) -> None:
        try:
            rx = parse_rxpk(entry)
            if rx.stat == -1:
                raise DatagramError("bad_crc", 0, "the gateway reports a CRC error")
            key, item = self._classify(rx)
        except FrameError as err:
            self.rejections.reject(getattr(err, "reason", "invalid"), f"{err} (via {gateway})")
            return
        reception = Reception(gateway, rx.rssi, rx.lsnr, rx.time_ms, rx.tmst, rx.freq, rx.datr)
        if self._dedup.offer(key, item, reception, _now_ms()):
            assert self._loop is not None, "run() first"
            self._loop.call_later(self.settings.dedup_window_ms / 1000, self._close, key)

    def _classify(self, rx: RxPacket) -> tuple[Key, _Data | _Join]:
        """Check one radio packet as far as it can be checked alone; raise FrameError."""
        if rx.data[:1] == b"\x00":
            request = parse_join_request(rx.data)
            device = self._join.check(request)
            return (int(request.dev_eui, 16), request.dev_nonce, request.mic), _Join(device,
                                                                                  request)
        frame = parse_data_frame(rx.data)
        if not frame.uplink:
            raise LorawanError("unsupported_mtype", 0, f"{frame.mtype.name} is no uplink")
        return (frame.dev_addr, frame.fcnt16, frame.mic), _Data(self._authenticate(frame)[0],
                                                               frame)

    def _authenticate(self, frame: DataFrame) -> tuple[Session, int]:
        """The session whose MIC and counter accept the frame; raise the most telling error."""
        sessions = self._by_addr.get(frame.dev_addr)
        if not sessions:
            raise LorawanError("unknown_dev_addr", 1, f"DevAddr {frame.dev_addr_hex}")
        errors: list[LorawanError] = []
        for session in sessions:
            try:
                fcnt = check_uplink(frame, session.nwk_s_key, self._state.fcnt(session.state_key),
                                    self.settings.max_fcnt_gap)
            except LorawanError as err:
                errors.append(err)
                continue
            return session, fcnt
        errors.sort(key=lambda e: e.reason == "bad_mic")
        raise errors[0]

    def _close(self, key: Key) -> None:
        uplink = self._dedup.pop(key)
        if uplink is not None:
            self._process(uplink)

    def _process(self, uplink: Uplink[_Data | _Join]) -> None:
        try:
            if isinstance(uplink.item, _Join):
                self._answer_join(uplink.item, uplink.receptions)
            else:
                self._deliver(uplink.item, uplink)
        except FrameError as err:
            who = (uplink.item.device.device_id if isinstance(uplink.item, _Join)
                   else uplink.item.session.device_id)
            self.rejections.reject(getattr(err, "reason", "invalid"), f"{err} (device {who})")

    def _deliver(self, item: _Data, uplink: Uplink[_Data | _Join]) -> None:
        session, frame = item.session, item.frame
        fcnt = check_uplink(frame, session.nwk_s_key, self._state.fcnt(session.state_key),
                            self.settings.max_fcnt_gap)
        self._state.put_fcnt(session.state_key, FcntState(fcnt, frame.mic))
        log.debug("uplink %s FCnt %d heard by %s, best %s", session.device_id, fcnt,
                  uplink.gateways, uplink.best)
        if not frame.fport:
            return
        wanted = getattr(session.profile.protocol, "fport", frame.fport)
        if frame.fport != wanted:
            raise LorawanError("unexpected_fport", 8, f"FPort {frame.fport} from "
                               f"{session.device_id}, the profile reads {wanted}")
        plain = decrypt_payload(frame, fcnt, session.nwk_s_key, session.app_s_key)
        raw = decode_payload(session.profile, plain)
        assert self._sink is not None
        self._sink(session.device_id, raw, self._timestamp(uplink))

    def _answer_join(self, item: _Join, receptions: list[Reception]) -> None:
        usable = [r for r in receptions if r.gateway in self._pull_addr and r.tmst is not None
                  and r.freq is not None and isinstance(r.datr, str)]
        if not usable or self._transport is None:
            raise LorawanError("no_downlink_path", 0, f"join of {item.device.device_id}: no "
                               "gateway that heard it has sent PULL_DATA")
        best = max(usable, key=Reception.quality)
        rx1_frequency(self.settings.region, cast(float, best.freq))  # before any state changes
        session, phy = self._join.accept(item.device, item.request)
        txpk = join_accept_txpk(phy, self.settings.region, cast(int, best.tmst),
                                cast(float, best.freq), cast(str, best.datr))
        resp = encode_pull_resp(PullResp(2, secrets.randbelow(0x10000), txpk))
        self._transport.sendto(resp, self._pull_addr[best.gateway])
        self._install(item.device, session)
        log.info("OTAA: %s joined as DevAddr %08x (join-accept via gateway %s)",
                 item.device.device_id, session.dev_addr, best.gateway)

    def _install(self, device: OtaaDevice, otaa: OtaaSession) -> None:
        """Make `otaa` the device's only session."""
        for addr in list(self._by_addr):
            kept = [s for s in self._by_addr[addr] if s.device_id != device.device_id]
            if kept:
                self._by_addr[addr] = kept
            else:
                del self._by_addr[addr]
        session = Session(device.device_id, device.profile, otaa.dev_addr, otaa.nwk_s_key,
                          otaa.app_s_key)
        self._by_addr.setdefault(otaa.dev_addr, []).append(session)

    def _timestamp(self, uplink: Uplink[_Data | _Join]) -> int:
        """The gateway's reception time when trusted, else when the first copy arrived."""
        gateway_ms = uplink.time_ms
        skew_ms = self.settings.max_clock_skew_s * 1000
        if (self.settings.use_gateway_time and gateway_ms is not None
                and abs(gateway_ms - uplink.opened_ms) <= skew_ms):
            return gateway_ms
        return uplink.opened_ms


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
