"""LoRaWAN 1.0.x data frames: parse and build PHYPayloads, MIC, FRMPayload encryption and the
32-bit uplink frame counter. Pure: no I/O, no time, no logging (AES from `cryptography`).

LoRaWAN 1.0.x specification (LoRa Alliance, 1.0.2 / 1.0.3 / 1.0.4), clause 4: MAC message
formats. Multi-byte fields go over the air least significant byte first.

    PHYPayload    MHDR | MACPayload                                        | MIC
                  1    | FHDR                       | FPort | FRMPayload    | 4
    FHDR          DevAddr | FCtrl | FCnt | FOpts
                  4 (LE)  | 1     | 2 LE | 0..15 (FCtrl bits 3..0 give the length)
    MHDR          MType (bits 7..5) | RFU (4..2) | Major (1..0) = 0 for LoRaWAN R1
    FCtrl up      ADR (7) | ADRACKReq (6) | ACK (5) | ClassB (4) | FOptsLen (3..0)

MIC (clause 4.4) = AES-CMAC(NwkSKey, B0 | MHDR..FRMPayload)[0:4] with

    B0 = 0x49 | 0x00 x4 | Dir | DevAddr (LE) | FCnt (32 bit, LE) | 0x00 | len(msg)

FRMPayload encryption (clause 4.3.3): payload XOR AES-ECB(K, A_i), i = 1.., with

    A_i = 0x01 | 0x00 x4 | Dir | DevAddr (LE) | FCnt (32 bit, LE) | 0x00 | i

K = AppSKey for FPort 1..255, NwkSKey for FPort 0 (MAC commands). Dir = 0 uplink, 1 downlink.

Only the low 16 bits of FCnt are sent; the receiver rebuilds the 32-bit counter from the last
one it accepted (`reconstruct_fcnt`) and rejects frames that do not advance it (`check_uplink`).
DevAddr is written as it is displayed (big-endian hex, "26011BDA"): the bytes on air are reversed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from edge_agent.errors import RejectedFrame

MIC_BYTES = 4
FHDR_MIN = 7  # DevAddr 4 + FCtrl 1 + FCnt 2
MIN_DATA_FRAME = 1 + FHDR_MIN + MIC_BYTES
FCNT_MAX = 0xFFFF_FFFF
MAX_FCNT_GAP = 16384  # LoRaWAN 1.0.x MAX_FCNT_GAP


class MType(IntEnum):
    join_request = 0
    join_accept = 1
    unconfirmed_up = 2
    unconfirmed_down = 3
    confirmed_up = 4
    confirmed_down = 5
    rfu = 6
    proprietary = 7


UPLINK_DATA = frozenset({MType.unconfirmed_up, MType.confirmed_up})
DOWNLINK_DATA = frozenset({MType.unconfirmed_down, MType.confirmed_down})


class LorawanError(RejectedFrame):
    """A PHYPayload that cannot be accepted; `reason` is a metric label."""


@dataclass(frozen=True)
class DataFrame:
    """One data frame as on air; `frm_payload` is still encrypted."""

    raw: bytes
    mtype: MType
    dev_addr: int
    fctrl: int
    fcnt16: int
    fopts: bytes
    fport: int | None
    frm_payload: bytes
    mic: bytes

    @property
    def uplink(self) -> bool:
        return self.mtype in UPLINK_DATA

    @property
    def confirmed(self) -> bool:
        return self.mtype in {MType.confirmed_up, MType.confirmed_down}

    @property
    def adr(self) -> bool:
        return bool(self.fctrl & 0x80)

    @property
    def dev_addr_hex(self) -> str:
        return f"{self.dev_addr:08x}"


def _aes_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def aes_cmac(key: bytes, message: bytes) -> bytes:
    """AES-128 CMAC (RFC 4493) of `message`."""
    mac = CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


def _block(first: int, uplink: bool, dev_addr: int, fcnt: int, last: int) -> bytes:
    return (bytes([first, 0, 0, 0, 0, 0 if uplink else 1]) + dev_addr.to_bytes(4, "little")
            + (fcnt & FCNT_MAX).to_bytes(4, "little") + bytes([0, last]))


def compute_mic(nwk_s_key: bytes, message: bytes, dev_addr: int, fcnt: int,
                uplink: bool = True) -> bytes:
    """MIC of a data frame: `message` is MHDR..FRMPayload (the PHYPayload without its MIC)."""
    b0 = _block(0x49, uplink, dev_addr, fcnt, len(message))
    return aes_cmac(nwk_s_key, b0 + message)[:MIC_BYTES]


def frame_mic_valid(frame: DataFrame, nwk_s_key: bytes, fcnt: int) -> bool:
    """True when the frame's MIC matches under the 32-bit counter `fcnt`."""
    expected = compute_mic(nwk_s_key, frame.raw[:-MIC_BYTES], frame.dev_addr, fcnt,
                           frame.uplink)
    return expected == frame.mic


def crypt_frm_payload(key: bytes, payload: bytes, dev_addr: int, fcnt: int,
                      uplink: bool = True) -> bytes:
    """Encrypt or decrypt (the same XOR operation) an FRMPayload."""
    stream = b"".join(_aes_block(key, _block(0x01, uplink, dev_addr, fcnt, i))
                      for i in range(1, (len(payload) + 15) // 16 + 1))
    return bytes(a ^ b for a, b in zip(payload, stream, strict=False))


def parse_data_frame(data: bytes) -> DataFrame:
    """Split a data-frame PHYPayload into its fields; raise LorawanError."""
    if len(data) < MIN_DATA_FRAME:
        raise LorawanError("phy_truncated", len(data),
                           f"{len(data)} bytes, a data frame has at least {MIN_DATA_FRAME}")
    mhdr = data[0]
    mtype = MType(mhdr >> 5)
    if mtype not in UPLINK_DATA | DOWNLINK_DATA:
        raise LorawanError("unsupported_mtype", 0, f"MType {mtype.name} is not a data frame")
    if mhdr & 0x03 != 0:
        raise LorawanError("bad_major", 0, f"Major {mhdr & 0x03} is not LoRaWAN R1")
    fctrl = data[5]
    fopts_end = 8 + (fctrl & 0x0F)
    body_end = len(data) - MIC_BYTES
    if fopts_end > body_end:
        raise LorawanError("phy_truncated", 5, f"FOptsLen {fctrl & 0x0F} runs past the MIC")
    fport = data[fopts_end] if fopts_end < body_end else None
    return DataFrame(raw=bytes(data), mtype=mtype,
                     dev_addr=int.from_bytes(data[1:5], "little"), fctrl=fctrl,
                     fcnt16=int.from_bytes(data[6:8], "little"), fopts=bytes(data[8:fopts_end]),
                     fport=fport, frm_payload=bytes(data[fopts_end + 1:body_end]),
                     mic=bytes(data[body_end:]))


@dataclass(frozen=True)
class UplinkSpec:
    """What an end device puts in one data uplink (used by simulators and tests)."""

    dev_addr: int
    fcnt: int
    fport: int | None
    payload: bytes = b""
    confirmed: bool = False
    fctrl: int = 0
    fopts: bytes = b""


def build_uplink(spec: UplinkSpec, nwk_s_key: bytes, app_s_key: bytes) -> bytes:
    """Encrypt and sign a data uplink as an end device does; return the PHYPayload."""
    if len(spec.fopts) > 15 or spec.fctrl & 0x0F:
        raise LorawanError("bad_fopts", 5, "FOpts is 0..15 bytes; its length is set here")
    if spec.fport is None and spec.payload:
        raise LorawanError("bad_fport", 0, "a payload needs an FPort")
    mtype = MType.confirmed_up if spec.confirmed else MType.unconfirmed_up
    body = (bytes([mtype << 5]) + spec.dev_addr.to_bytes(4, "little")
            + bytes([(spec.fctrl & 0xF0) | len(spec.fopts)])
            + (spec.fcnt & 0xFFFF).to_bytes(2, "little") + spec.fopts)
    if spec.fport is not None:
        key = app_s_key if spec.fport > 0 else nwk_s_key
        body += bytes([spec.fport]) + crypt_frm_payload(key, spec.payload, spec.dev_addr,
                                                        spec.fcnt)
    return body + compute_mic(nwk_s_key, body, spec.dev_addr, spec.fcnt)


def decrypt_payload(frame: DataFrame, fcnt: int, nwk_s_key: bytes, app_s_key: bytes) -> bytes:
    """The plaintext FRMPayload (AppSKey for FPort > 0, NwkSKey for FPort 0)."""
    key = app_s_key if frame.fport else nwk_s_key
    return crypt_frm_payload(key, frame.frm_payload, frame.dev_addr, fcnt, frame.uplink)


def reconstruct_fcnt(last: int | None, fcnt16: int) -> int:
    """The smallest 32-bit counter above `last` whose low 16 bits are `fcnt16`.

    With no counter yet (a new session) the 16 transmitted bits are taken as the counter.
    """
    if last is None:
        return fcnt16
    candidate = (last & 0xFFFF_0000) | fcnt16
    return candidate if candidate > last else candidate + 0x1_0000


@dataclass(frozen=True)
class FcntState:
    """The last accepted uplink of a session: its 32-bit counter and MIC."""

    fcnt: int
    mic: bytes


def check_uplink(frame: DataFrame, nwk_s_key: bytes, last: FcntState | None,
                 max_gap: int = MAX_FCNT_GAP) -> int:
    """Accept an uplink: return its 32-bit FCnt, or raise LorawanError with the reason.

    The counter must advance by 1..max_gap; the MIC must match under it. A frame whose MIC
    matches under an older counter value is named precisely: `retransmission` (the last
    accepted frame again: a NbTrans repeat or a copy heard late by another gateway) or
    `replayed_fcnt` (an older frame, or the same counter with another MIC); a MIC that matches
    nowhere is `bad_mic`; an authentic frame too far ahead is `fcnt_gap`.
    """
    full = reconstruct_fcnt(last.fcnt if last else None, frame.fcnt16)
    if full > FCNT_MAX:
        raise LorawanError("fcnt_exhausted", 6, "the 32-bit frame counter is used up")
    gap_ok = last is None or full - last.fcnt <= max_gap
    if gap_ok and frame_mic_valid(frame, nwk_s_key, full):
        return full
    older = full - 0x1_0000
    if last is not None and older >= 0 and frame_mic_valid(frame, nwk_s_key, older):
        if older == last.fcnt and frame.mic == last.mic:
            raise LorawanError("retransmission", 6, f"FCnt {older} was accepted already")
        raise LorawanError("replayed_fcnt", 6, f"FCnt {older} is not above {last.fcnt}")
    if not gap_ok and frame_mic_valid(frame, nwk_s_key, full):
        raise LorawanError("fcnt_gap", 6, f"FCnt {full} is more than {max_gap} above "
                           f"{last.fcnt if last else 0}")
    raise LorawanError("bad_mic", len(frame.raw) - MIC_BYTES,
                       f"MIC {frame.mic.hex()} does not match")
