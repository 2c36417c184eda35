"""OTAA joins for the semtech_udp listener: check a join-request, give the device a DevAddr and
session keys, and build the join-accept. No sockets: the listener sends the answer.

A join-request is accepted when its DevEUI is configured (`params.dev_eui` + `app_key`), its
MIC matches under the AppKey, its AppEUI is the configured one (if any) and its DevNonce was
never used by that device (LoRaWAN 1.0.x clause 6.2.4: a repeated DevNonce is a replay). The
new session replaces the device's previous one; session and used nonces are kept in the
listener's state (state.py). DevAddrs are NwkID (the NetID's low 7 bits) | 25 random bits,
never one already in use.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from device_profiles.schema import Profile
from edge_agent.protocols.semtech_udp.join import (
    JoinAccept,
    JoinRequest,
    build_join_accept,
    join_request_mic_valid,
    session_keys,
)
from edge_agent.protocols.semtech_udp.lorawan import LorawanError
from edge_agent.protocols.semtech_udp.state import LorawanState, OtaaSession


@dataclass(frozen=True)
class OtaaDevice:
    device_id: str
    profile: Profile
    dev_eui: str
    app_key: bytes
    app_eui: str | None = None

    def __repr__(self) -> str:
        return f"OtaaDevice({self.device_id}, dev_eui={self.dev_eui})"


class JoinServer:
    """Answers join-requests of the configured OTAA devices."""

    def __init__(self, devices: list[OtaaDevice], state: LorawanState, net_id: int,
                 in_use: Callable[[int], bool]) -> None:
        self.devices = {d.dev_eui.lower(): d for d in devices}
        self.state = state
        self.net_id = net_id
        self.in_use = in_use

    def check(self, request: JoinRequest) -> OtaaDevice:
        """The device a join-request comes from; raise LorawanError with the reason."""
        device = self.devices.get(request.dev_eui)
        if device is None:
            raise LorawanError("unknown_dev_eui", 9, f"join-request from DevEUI "
                               f"{request.dev_eui}")
        if not join_request_mic_valid(request, device.app_key):
            raise LorawanError("bad_mic", 19, f"join-request MIC of {device.device_id}")
        if device.app_eui is not None and device.app_eui.lower() != request.app_eui:
            raise LorawanError("unexpected_app_eui", 1, f"AppEUI {request.app_eui} from "
                               f"{device.device_id}")
        if self.state.dev_nonce_used(device.device_id, request.dev_nonce):
            raise LorawanError("replayed_dev_nonce", 17, f"DevNonce {request.dev_nonce} of "
                               f"{device.device_id} was used before")
        return device

    def accept(self, device: OtaaDevice, request: JoinRequest) -> tuple[OtaaSession, bytes]:
        """Open a new session for the device; return it and the join-accept PHYPayload."""
        self.check(request)
        self.state.use_dev_nonce(device.device_id, request.dev_nonce)
        accept = JoinAccept(app_nonce=secrets.randbelow(1 << 24), net_id=self.net_id,
                            dev_addr=self._free_dev_addr(), dl_settings=0, rx_delay=1)
        nwk, app = session_keys(device.app_key, accept.app_nonce, self.net_id,
                                request.dev_nonce)
        session = OtaaSession(accept.dev_addr, nwk, app)
        self.state.put_otaa_session(device.device_id, session)
        return session, build_join_accept(accept, device.app_key)

    def _free_dev_addr(self) -> int:
        prefix = (self.net_id & 0x7F) << 25
        while True:
            candidate = prefix | secrets.randbelow(1 << 25)
            if not self.in_use(candidate):
                return candidate
