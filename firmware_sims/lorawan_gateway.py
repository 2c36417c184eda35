"""Simulated LoRa gateways and the LoRaWAN end devices they hear, over real UDP on loopback.

Each `SimGateway` is a Semtech packet forwarder (Lora-net/packet_forwarder PROTOCOL.TXT v2):
a UDP client that sends PULL_DATA keepalives and pushes received radio packets as PUSH_DATA
rxpk entries, waiting for the server's PUSH_ACK/PULL_ACK by token. Each `SimEndDevice` is an
ABP class A device that builds real LoRaWAN 1.0.x uplinks — FRMPayload encrypted with its
AppSKey, MIC signed with its NwkSKey — with the agent's own lorawan.py and payload.py, from
engineering values laid out by its profile. `LorawanSim` owns both: one uplink is heard by
every gateway (with different RSSI/SNR), which is what the server must deduplicate.

    async with LorawanSim("127.0.0.1", port, ["aa555a0000000001", "aa555a0000000002"]) as sim:
        meter = sim.add_device(water_meter(0x26011BDA, NWK, APP, total_volume=123.456))
        await sim.wait_connected()
        await sim.uplink(meter)                  # one frame, two gateways
        meter.advance(3600)                      # the volume grows with the flow
        await sim.uplink(meter, corrupt_mic=True)
        await sim.replay(meter, 0)               # the first frame again
        await sim.uplink_unknown_device()
        await sim.send_garbage(b"noise")

OTAA: `device.with_otaa(dev_eui, app_key)` then `await sim.join(device)` — the gateways
forward the join-request, take the server's PULL_RESP (answering TX_ACK) and the device opens
the join-accept and derives its session keys.

Fault injection: a bad MIC, a replayed old frame, an unknown DevAddr, garbage or oversized
datagrams, a CRC-failed rxpk, a repeated DevNonce (`join(..., dev_nonce=...)`). Physics: the
water meter's volume grows with its flow (`advance`); everything else is what the test sets.
Loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType

from device_profiles.schema import Profile, load_profiles
from edge_agent.errors import FrameError
from edge_agent.protocols.semtech_udp.codec import (
    Ack,
    Identifier,
    PullData,
    PullResp,
    PushData,
    RxPacket,
    TxAck,
    decode_datagram,
    encode_pull_data,
    encode_push_data,
    encode_rxpk,
    encode_tx_ack,
)
from edge_agent.protocols.semtech_udp.join import (
    JoinAccept,
    build_join_request,
    open_join_accept,
    session_keys,
)
from edge_agent.protocols.semtech_udp.lorawan import UplinkSpec, build_uplink
from edge_agent.protocols.semtech_udp.payload import encode_payload
from edge_agent.scaling import Value, to_raw

WATER_METER_PROFILE = "dc-lorawan-watermeter-v1"
SMOKE_PROFILE = "dc-lorawan-smoke-v1"
PLAUSIBLE_VALUES: Mapping[str, Mapping[str, Value]] = MappingProxyType({
    WATER_METER_PROFILE: MappingProxyType({
        "total_volume": 1234.567, "battery": 87, "valve_state": 1, "leak": False,
        "reverse_flow": False, "tamper": False, "water_temperature": 14, "flow": 0.62}),
    SMOKE_PROFILE: MappingProxyType({
        "smoke_alarm": False, "fault": False, "tamper": False, "self_test": False,
        "battery": 95, "temperature": 22}),
})
"""Values of a device in its normal state, by profile (no alarm, battery fine)."""


@dataclass
class SimEndDevice:
    """An ABP end device: its session, its current engineering values and what it sent."""

    dev_addr: int
    nwk_s_key: bytes
    app_s_key: bytes
    profile: Profile
    values: dict[str, Value] = field(default_factory=dict)
    fcnt: int = 0
    confirmed: bool = False
    sent: list[bytes] = field(default_factory=list)
    dev_eui: str | None = None
    app_key: bytes | None = None
    app_eui: str = "0000000000000000"
    dev_nonce: int = 0

    def with_otaa(self, dev_eui: str, app_key: bytes, app_eui: str = "0000000000000000"
                  ) -> SimEndDevice:
        """Make this an OTAA device: no session until it joins."""
        self.dev_eui, self.app_key, self.app_eui = dev_eui.lower(), app_key, app_eui
        self.dev_addr, self.nwk_s_key, self.app_s_key = 0, b"", b""
        return self

    def join_request(self, dev_nonce: int | None = None) -> bytes:
        """A join-request with a fresh random DevNonce (or the one given)."""
        assert self.dev_eui is not None and self.app_key is not None, "with_otaa() first"
        self.dev_nonce = secrets.randbelow(0x10000) if dev_nonce is None else dev_nonce
        return build_join_request(self.app_eui, self.dev_eui, self.dev_nonce, self.app_key)

    def accept_join(self, phy: bytes) -> JoinAccept:
        """Open a join-accept as the radio received it and start the new session."""
        assert self.app_key is not None, "with_otaa() first"
        accept = open_join_accept(phy, self.app_key)
        self.nwk_s_key, self.app_s_key = session_keys(self.app_key, accept.app_nonce,
                                                      accept.net_id, self.dev_nonce)
        self.dev_addr, self.fcnt = accept.dev_addr, 0
        return accept

    def set(self, **values: Value) -> None:
        """Change reported values (engineering units), e.g. `set(smoke_alarm=True)`."""
        unknown = sorted(set(values) - {p.name for p in self.profile.points})
        if unknown:
            raise KeyError(f"{self.profile.id} has no points {unknown}")
        self.values.update(values)

    def payload(self) -> bytes:
        raw = {p.name: to_raw(p, self.values[p.name]) for p in self.profile.points
               if p.name in self.values}
        return encode_payload(self.profile, raw)

    def next_uplink(self, corrupt_mic: bool = False) -> bytes:
        """Build the next data uplink (its FCnt then goes up by one)."""
        fport = getattr(self.profile.protocol, "fport", 1)
        phy = build_uplink(UplinkSpec(self.dev_addr, self.fcnt, fport, self.payload(),
                                      confirmed=self.confirmed), self.nwk_s_key, self.app_s_key)
        if corrupt_mic:
            phy = phy[:-1] + bytes([phy[-1] ^ 0x5A])
        self.fcnt += 1
        self.sent.append(phy)
        return phy

    def advance(self, seconds: float) -> None:
        """Let time pass: a water meter's volume grows with its flow."""
        if "total_volume" in self.values and "flow" in self.values:
            grown = float(self.values["total_volume"]) + float(self.values["flow"]) * seconds / 3600
            self.values["total_volume"] = round(grown, 3)


def _profile(profile_id: str) -> Profile:
    return load_profiles().get(profile_id)


def water_meter(dev_addr: int, nwk_s_key: bytes, app_s_key: bytes,
                **values: Value) -> SimEndDevice:
    """A LoRaWAN water meter with plausible values, overridden by `values`."""
    device = SimEndDevice(dev_addr, nwk_s_key, app_s_key, _profile(WATER_METER_PROFILE),
                          dict(PLAUSIBLE_VALUES[WATER_METER_PROFILE]))
    device.set(**values)
    return device


def smoke_detector(dev_addr: int, nwk_s_key: bytes, app_s_key: bytes,
                   **values: Value) -> SimEndDevice:
    """A LoRaWAN smoke alarm in the normal state, overridden by `values`."""
    device = SimEndDevice(dev_addr, nwk_s_key, app_s_key, _profile(SMOKE_PROFILE),
                          dict(PLAUSIBLE_VALUES[SMOKE_PROFILE]))
    device.set(**values)
    return device


class _Client(asyncio.DatagramProtocol):
    def __init__(self, gateway: SimGateway) -> None:
        self.gateway = gateway

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.gateway.on_reply(data)

    def error_received(self, exc: Exception) -> None:
        """ICMP port unreachable while the server is not up yet: keep trying."""


@dataclass
class SimGateway:
    """One packet forwarder talking to the server at host:port."""

    eui: str
    host: str
    port: int
    keepalive_s: float = 5.0
    gps: bool = True
    ack_timeout_s: float = 2.0
    freq: float = 470.9  # CN470 uplink channel 3
    pull: bool = True  # False: never send PULL_DATA (a forwarder with its downlink port shut)
    push_acks: int = 0
    pull_acks: int = 0
    last_tmst: int | None = None
    downlinks: asyncio.Queue[dict[str, object]] = field(default_factory=asyncio.Queue)
    _transport: asyncio.DatagramTransport | None = None
    _waiting: dict[tuple[int, int], asyncio.Future[None]] = field(default_factory=dict)
    _keepalive: asyncio.Task[None] | None = None
    _pulled: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Client(self), remote_addr=(self.host, self.port))
        if self.pull:
            self._keepalive = asyncio.create_task(self._keep_alive(), name=f"pull-{self.eui}")

    async def stop(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def _keep_alive(self) -> None:
        while True:
            token = secrets.randbelow(0x10000)
            self.send(encode_pull_data(PullData(2, token, self.eui)))
            # until the first PULL_ACK the server may not be up: ask again soon
            await asyncio.sleep(self.keepalive_s if self._pulled.is_set() else 0.1)

    async def wait_pulled(self, timeout_s: float) -> None:
        """Wait until the server has acknowledged a PULL_DATA (it is listening)."""
        await asyncio.wait_for(self._pulled.wait(), timeout_s)

    def send(self, datagram: bytes) -> None:
        assert self._transport is not None, "start() first"
        self._transport.sendto(datagram)

    def on_reply(self, data: bytes) -> None:
        try:
            packet = decode_datagram(data)
        except FrameError:
            return
        if isinstance(packet, PullResp):
            self.downlinks.put_nowait(packet.txpk)
            self.send(encode_tx_ack(TxAck(packet.version, packet.token, self.eui, "NONE")))
            return
        if not isinstance(packet, Ack):
            return
        if packet.identifier == Identifier.pull_ack:
            self.pull_acks += 1
            self._pulled.set()
        else:
            self.push_acks += 1
        waiter = self._waiting.pop((packet.identifier, packet.token), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def push(self, rxpk: Sequence[Mapping[str, object]]) -> bool:
        """Send one PUSH_DATA; True when the server acknowledged it in time."""
        token = secrets.randbelow(0x10000)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[(Identifier.push_ack, token)] = waiter
        self.send(encode_push_data(PushData(2, token, self.eui, tuple(rxpk))))
        try:
            await asyncio.wait_for(waiter, self.ack_timeout_s)
        except TimeoutError:
            self._waiting.pop((Identifier.push_ack, token), None)
            return False
        return True

    def rxpk(self, phy: bytes, rssi: int, lsnr: float, stat: int = 1) -> dict[str, object]:
        """The rxpk entry this gateway reports for a received frame."""
        stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        self.last_tmst = secrets.randbelow(2**32)
        packet = RxPacket(data=phy, tmst=self.last_tmst, freq=self.freq, rssi=rssi, lsnr=lsnr,
                          stat=stat, datr="SF7BW125", extra={"chan": 0, "rfch": 0, "codr": "4/5"})
        return encode_rxpk(packet, stamp if self.gps else None)


@dataclass
class Downlink:
    """A PULL_RESP as a gateway received it (and, for a join, what the device read)."""

    gateway: SimGateway
    txpk: dict[str, object]
    accept: JoinAccept | None = None


class LorawanSim:
    """Gateways plus end devices: every uplink is heard by the chosen gateways."""

    def __init__(self, host: str, port: int, gateway_euis: Sequence[str],
                 keepalive_s: float = 5.0, gps: bool = True) -> None:
        self.gateways = [SimGateway(eui, host, port, keepalive_s, gps) for eui in gateway_euis]
        self.devices: list[SimEndDevice] = []

    async def __aenter__(self) -> LorawanSim:
        await self.start()
        return self

    async def __aexit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                        _tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        for gateway in self.gateways:
            await gateway.start()

    async def stop(self) -> None:
        for gateway in self.gateways:
            await gateway.stop()

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until the server has answered every gateway's PULL_DATA."""
        await asyncio.gather(*(g.wait_pulled(timeout_s) for g in self.gateways))

    def add_device(self, device: SimEndDevice) -> SimEndDevice:
        self.devices.append(device)
        return device

    async def transmit(self, phy: bytes, gateways: Sequence[SimGateway] | None = None,
                       stat: int = 1) -> list[bool]:
        """One radio frame heard by `gateways` (default all), each with its own signal."""
        heard_by = list(gateways) if gateways is not None else self.gateways
        return list(await asyncio.gather(*(
            g.push([g.rxpk(phy, rssi=-60 - 7 * i, lsnr=9.5 - 2 * i, stat=stat)])
            for i, g in enumerate(heard_by))))

    async def uplink(self, device: SimEndDevice, corrupt_mic: bool = False,
                     gateways: Sequence[SimGateway] | None = None) -> bytes:
        """The device sends its next uplink; return the PHYPayload."""
        phy = device.next_uplink(corrupt_mic=corrupt_mic)
        await self.transmit(phy, gateways)
        return phy

    async def join(self, device: SimEndDevice, timeout_s: float = 5.0,
                   dev_nonce: int | None = None) -> Downlink:
        """OTAA: send a join-request through every gateway, take the join-accept the server
        sends back through one of them, and start the device's session."""
        await self.transmit(device.join_request(dev_nonce))
        downlink = await self.next_downlink(timeout_s)
        phy = base64.b64decode(str(downlink.txpk["data"]))
        downlink.accept = device.accept_join(phy)
        return downlink

    async def next_downlink(self, timeout_s: float) -> Downlink:
        """The next PULL_RESP any gateway receives."""
        waits = {asyncio.create_task(g.downlinks.get()): g for g in self.gateways}
        done, pending = await asyncio.wait(waits, timeout=timeout_s,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if not done:
            raise TimeoutError(f"no downlink within {timeout_s} s")
        task = done.pop()
        return Downlink(waits[task], task.result())

    async def replay(self, device: SimEndDevice, index: int = 0) -> bytes:
        """An attacker (or a confused gateway) sends an old frame of the device again."""
        phy = device.sent[index]
        await self.transmit(phy, self.gateways[:1])
        return phy

    async def uplink_unknown_device(self) -> bytes:
        """A frame from a device of another network (DevAddr and keys nobody configured)."""
        stranger = water_meter(0x0BADADD0, secrets.token_bytes(16), secrets.token_bytes(16))
        phy = stranger.next_uplink()
        await self.transmit(phy, self.gateways[:1])
        return phy

    async def uplink_crc_error(self, device: SimEndDevice) -> bytes:
        """A frame the gateway received with a bad radio CRC (forwarded with stat -1)."""
        phy = device.next_uplink()
        await self.transmit(phy, self.gateways[:1], stat=-1)
        return phy

    async def send_garbage(self, data: bytes = b"\x02garbage, not a datagram") -> None:
        """Raw bytes from the first gateway's socket (no answer is expected)."""
        self.gateways[0].send(data)

    async def send_oversized(self, size: int = 70_000 // 2) -> None:
        """A PUSH_DATA longer than the listener accepts."""
        gateway = self.gateways[0]
        entry = {"data": "A" * size}
        gateway.send(encode_push_data(PushData(2, 1, gateway.eui, (entry,))))
