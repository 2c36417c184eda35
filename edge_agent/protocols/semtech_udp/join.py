"""LoRaWAN 1.0.x over-the-air activation (OTAA): join-request, join-accept, session keys, and
the join-accept's downlink window. Pure: no I/O, no time, no logging.

LoRaWAN 1.0.x specification clause 6.2 (multi-byte fields least significant byte first):

    join-request  MHDR 0x00 | AppEUI 8 | DevEUI 8 | DevNonce 2 | MIC 4
                  MIC = AES-CMAC(AppKey, MHDR | AppEUI | DevEUI | DevNonce)[0:4]
    join-accept   MHDR 0x20 | AppNonce 3 | NetID 3 | DevAddr 4 | DLSettings 1 | RxDelay 1
                  | [CFList 16] | MIC 4
                  MIC = AES-CMAC(AppKey, MHDR | AppNonce .. CFList)[0:4]; everything after
                  MHDR is then "encrypted" with AES-128 *decrypt* (ECB) under AppKey, so the
                  device only needs AES encrypt to read it
    NwkSKey = AES-128-encrypt(AppKey, 0x01 | AppNonce | NetID | DevNonce | 0x00 x7)
    AppSKey = AES-128-encrypt(AppKey, 0x02 | AppNonce | NetID | DevNonce | 0x00 x7)

The join-accept goes out in RX1, JOIN_ACCEPT_DELAY1 = 5 s after the end of the join-request
(the gateway's `tmst` counter, µs, wrapping at 2^32), on the uplink's data rate (RX1DROffset 0)
and the region's RX1 frequency: EU868 the uplink frequency; CN470-510 downlink channel
(uplink channel mod 48), 500.3 MHz + 0.2 MHz × channel (RP002-1.0.x regional parameters).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from edge_agent.protocols.semtech_udp.lorawan import LorawanError, aes_cmac

JOIN_REQUEST_BYTES = 23
JOIN_ACCEPT_DELAY1_US = 5_000_000
Region = Literal["EU868", "CN470"]
TX_POWER_DBM: dict[str, int] = {"EU868": 14, "CN470": 17}


@dataclass(frozen=True)
class JoinRequest:
    raw: bytes
    app_eui: str
    dev_eui: str
    dev_nonce: int
    mic: bytes


@dataclass(frozen=True)
class JoinAccept:
    app_nonce: int
    net_id: int
    dev_addr: int
    dl_settings: int = 0
    rx_delay: int = 1
    cf_list: bytes = b""


def _eui(data: bytes) -> str:
    return data[::-1].hex()


def parse_join_request(data: bytes) -> JoinRequest:
    """Split a join-request; raise LorawanError (it does not check the MIC)."""
    if len(data) != JOIN_REQUEST_BYTES:
        raise LorawanError("phy_truncated" if len(data) < JOIN_REQUEST_BYTES else "bad_length",
                           min(len(data), JOIN_REQUEST_BYTES),
                           f"a join-request has {JOIN_REQUEST_BYTES} bytes, got {len(data)}")
    if data[0] != 0x00:
        raise LorawanError("unsupported_mtype", 0, f"MHDR 0x{data[0]:02x} is no join-request")
    return JoinRequest(raw=bytes(data), app_eui=_eui(data[1:9]), dev_eui=_eui(data[9:17]),
                       dev_nonce=int.from_bytes(data[17:19], "little"), mic=bytes(data[19:]))


def join_request_mic_valid(request: JoinRequest, app_key: bytes) -> bool:
    return aes_cmac(app_key, request.raw[:-4])[:4] == request.mic


def build_join_request(app_eui: str, dev_eui: str, dev_nonce: int, app_key: bytes) -> bytes:
    """A join-request as a device sends it (simulators and tests)."""
    body = (b"\x00" + bytes.fromhex(app_eui)[::-1] + bytes.fromhex(dev_eui)[::-1]
            + dev_nonce.to_bytes(2, "little"))
    return body + aes_cmac(app_key, body)[:4]


def _ecb(key: bytes, data: bytes, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def session_keys(app_key: bytes, app_nonce: int, net_id: int, dev_nonce: int
                 ) -> tuple[bytes, bytes]:
    """(NwkSKey, AppSKey) of a LoRaWAN 1.0.x join."""
    tail = (app_nonce.to_bytes(3, "little") + net_id.to_bytes(3, "little")
            + dev_nonce.to_bytes(2, "little") + bytes(7))
    return _ecb(app_key, b"\x01" + tail, True), _ecb(app_key, b"\x02" + tail, True)


def _accept_body(accept: JoinAccept) -> bytes:
    return (b"\x20" + accept.app_nonce.to_bytes(3, "little") + accept.net_id.to_bytes(3, "little")
            + accept.dev_addr.to_bytes(4, "little") + bytes([accept.dl_settings, accept.rx_delay])
            + accept.cf_list)


def build_join_accept(accept: JoinAccept, app_key: bytes) -> bytes:
    """The encrypted join-accept PHYPayload the network sends."""
    body = _accept_body(accept)
    sealed = body[1:] + aes_cmac(app_key, body)[:4]
    return body[:1] + _ecb(app_key, sealed, False)


def open_join_accept(phy: bytes, app_key: bytes) -> JoinAccept:
    """Decrypt and check a join-accept as the device does; raise LorawanError."""
    if len(phy) not in {17, 33} or phy[0] != 0x20:
        raise LorawanError("bad_length", 0, f"not a join-accept ({len(phy)} bytes)")
    plain = phy[:1] + _ecb(app_key, phy[1:], True)
    if aes_cmac(app_key, plain[:-4])[:4] != plain[-4:]:
        raise LorawanError("bad_mic", len(phy) - 4, "join-accept MIC does not match")
    return JoinAccept(app_nonce=int.from_bytes(plain[1:4], "little"),
                      net_id=int.from_bytes(plain[4:7], "little"),
                      dev_addr=int.from_bytes(plain[7:11], "little"), dl_settings=plain[11],
                      rx_delay=plain[12], cf_list=plain[13:-4])


def rx1_frequency(region: Region, uplink_mhz: float) -> float:
    if region == "CN470":
        channel = round((uplink_mhz - 470.3) / 0.2)
        if not 0 <= channel <= 95:
            raise LorawanError("bad_frequency", 0, f"{uplink_mhz} MHz is no CN470 uplink")
        return round(500.3 + 0.2 * (channel % 48), 6)
    return uplink_mhz


def join_accept_txpk(phy: bytes, region: Region, tmst: int, uplink_mhz: float,
                     datr: str) -> dict[str, Any]:
    """The PULL_RESP txpk that sends `phy` in RX1 after a join-request received at `tmst`."""
    return {"imme": False, "tmst": (tmst + JOIN_ACCEPT_DELAY1_US) % 2**32,
            "freq": rx1_frequency(region, uplink_mhz), "rfch": 0, "powe": TX_POWER_DBM[region],
            "modu": "LORA", "datr": datr, "codr": "4/5", "ipol": True, "size": len(phy),
            "ncrc": True, "data": base64.b64encode(phy).decode("ascii")}
