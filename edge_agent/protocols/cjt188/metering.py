"""The 901F metering data item of CJ/T 188 answers. Pure: no I/O, no time, no logging.

Decodes the BCD quantities with their unit codes (volumes to m³, heat to kWh), the meter's
clock and the status bytes into the named fields of `Cjt188Protocol.fields`; encodes the same
for simulators. Layouts (offsets after DI and SER) are in codec.py's docstring. Items past the
end of a short answer are None (some meters send only the current cumulative flow).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum

from edge_agent.protocols.cjt188.codec import (
    DI_METERING,
    HEADER_BYTES,
    Frame,
    Function,
    UnexpectedData,
    UnknownUnit,
    decode_bcd,
    decode_di,
    encode_bcd,
)

Raw = bool | int | float

DATA_START = HEADER_BYTES + 3  # payload offset in a frame: after 68 T A C L and DI SER
QUANTITY_BYTES, CLOCK_BYTES, STATUS_BYTES = 5, 7, 2
UNIT_M3, UNIT_LITRE, UNIT_KWH = 0x2C, 0x29, 0x05

# unit code -> factor to m³ (volumes) or kWh (heat); 3.6 MJ = 1 kWh
VOLUME_UNITS: dict[int, Decimal] = {UNIT_LITRE: Decimal("0.001"), UNIT_M3: Decimal(1)}
HEAT_UNITS: dict[int, Decimal] = {
    0x02: Decimal("0.001"), UNIT_KWH: Decimal(1), 0x08: Decimal(1000), 0x0A: Decimal(100_000),
    0x01: Decimal(1) / Decimal(3_600_000), 0x0B: Decimal(1) / Decimal(3600),
    0x0E: Decimal(1) / Decimal("3.6"), 0x11: Decimal(1000) / Decimal("3.6"),
    0x13: Decimal(100_000) / Decimal("3.6")}

# (item, kind, offset after DI SER): water and gas meters, heat meters
WATER_LAYOUT = (("cumulative_flow", "volume", 0), ("settlement_flow", "volume", 5),
                ("clock", "clock", 10), ("status", "status", 17))
HEAT_LAYOUT = (("settlement_heat", "heat", 0), ("current_heat", "heat", 5),
               ("cumulative_flow", "volume", 20), ("clock", "clock", 34),
               ("status", "status", 41))
ITEM_BYTES = {"volume": QUANTITY_BYTES, "heat": QUANTITY_BYTES, "clock": CLOCK_BYTES,
              "status": STATUS_BYTES}


class ValveState(IntEnum):
    """ST0 bits D1 D0."""

    OPEN = 0b00
    CLOSED = 0b01
    UNDEFINED = 0b10
    ABNORMAL = 0b11


@dataclass(frozen=True)
class Status:
    """ST0 (valve D1 D0, battery low D2, manufacturer D3..D7) and ST1 (manufacturer)."""

    st0: int = 0
    st1: int = 0

    @classmethod
    def of(cls, valve: ValveState = ValveState.OPEN, battery_low: bool = False,
           vendor_bits: int = 0, st1: int = 0) -> Status:
        return cls(int(valve) | (0x04 if battery_low else 0) | (vendor_bits & 0xF8), st1)

    @property
    def valve(self) -> ValveState:
        return ValveState(self.st0 & 0x03)

    @property
    def battery_low(self) -> bool:
        return bool(self.st0 & 0x04)

    @property
    def raw(self) -> int:
        return self.st0 | self.st1 << 8


@dataclass(frozen=True)
class MeterClock:
    """The meter's own clock: local time, no zone (China Standard Time in the field)."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int

    @classmethod
    def of(cls, when: datetime) -> MeterClock:
        return cls(when.year, when.month, when.day, when.hour, when.minute, when.second)

    def to_datetime(self, utc_offset_h: float) -> datetime:
        zone = timezone(timedelta(hours=utc_offset_h))
        return datetime(self.year, self.month, self.day, self.hour, self.minute, self.second,
                        tzinfo=zone)

    def epoch_s(self, utc_offset_h: float) -> int:
        return int(self.to_datetime(utc_offset_h).timestamp())


@dataclass(frozen=True)
class MeteringData:
    """901F contents; volumes in m³, heat in kWh; None = not sent or not provided (FF)."""

    cumulative_flow: Decimal | None = None
    settlement_flow: Decimal | None = None
    clock: MeterClock | None = None
    status: Status | None = None
    current_heat: Decimal | None = None
    settlement_heat: Decimal | None = None


def is_heat_meter(meter_type: int) -> bool:
    return 0x20 <= meter_type <= 0x29


def _quantity(raw: bytes, units: dict[int, Decimal], offset: int) -> Decimal | None:
    if raw[:4] == b"\xff\xff\xff\xff":
        return None
    hundredths = decode_bcd(raw[:4], offset)
    factor = units.get(raw[4])
    if factor is None:
        raise UnknownUnit(f"unit code {raw[4]:02X} is not one this item takes", offset + 4)
    return Decimal(hundredths).scaleb(-2) * factor


def _clock(raw: bytes, offset: int) -> MeterClock | None:
    """ss mm hh DD MM YY YY; all 00 or all FF (no clock) and impossible dates are None."""
    if raw in (bytes(CLOCK_BYTES), b"\xff" * CLOCK_BYTES):
        return None
    second, minute, hour, day, month = (decode_bcd(raw[k:k + 1], offset + k) for k in range(5))
    year = decode_bcd(raw[5:7], offset + 5)
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    return MeterClock(year, month, day, hour, minute, second)


def _item(kind: str, raw: bytes, offset: int) -> object:
    if kind == "volume":
        return _quantity(raw, VOLUME_UNITS, offset)
    if kind == "heat":
        return _quantity(raw, HEAT_UNITS, offset)
    if kind == "clock":
        return _clock(raw, offset)
    return Status(raw[0], raw[1])


def decode_metering(frame: Frame) -> MeteringData:
    """The 901F item of a read-data answer; raise a Cjt188Error when it is not one."""
    if not frame.from_meter or frame.is_error or frame.function != Function.READ_DATA:
        raise UnexpectedData(f"control {frame.control:02X} is not a read-data answer", 9)
    if len(frame.data) < 3 or decode_di(frame.data[:2]) != DI_METERING:
        raise UnexpectedData(f"data {frame.data[:2].hex()} is not the 901F item", HEADER_BYTES)
    payload = frame.data[3:]
    layout = HEAT_LAYOUT if is_heat_meter(frame.meter_type) else WATER_LAYOUT
    items = {name: _item(kind, payload[at:at + ITEM_BYTES[kind]], DATA_START + at)
             for name, kind, at in layout if at + ITEM_BYTES[kind] <= len(payload)}
    return MeteringData(**items)  # type: ignore[arg-type]


def error_status(frame: Frame) -> Status | None:
    """ST of an error answer (C with D6 set: SER then ST), None when it carries none."""
    if len(frame.data) < 1 + STATUS_BYTES:
        return None
    return Status(frame.data[1], frame.data[2])


def metering_fields(data: MeteringData, utc_offset_h: float = 8.0) -> dict[str, Raw]:
    """Raw values by field name (Cjt188Protocol.fields); absent items are left out."""
    out: dict[str, Raw] = {}
    for name in ("cumulative_flow", "settlement_flow", "current_heat", "settlement_heat"):
        value = getattr(data, name)
        if value is not None:
            out[name] = float(value)
    if data.clock is not None:
        out["meter_time"] = data.clock.epoch_s(utc_offset_h)
    if data.status is not None:
        out.update(status=data.status.raw, battery_low=data.status.battery_low,
                   valve_open=data.status.valve == ValveState.OPEN,
                   valve_abnormal=data.status.valve == ValveState.ABNORMAL)
    return out


# --- encoding (simulators, round trips) ---------------------------------------------------

def _encode_quantity(value: Decimal | None, unit: int, units: dict[int, Decimal]) -> bytes:
    if value is None:
        return b"\xff" * 4 + bytes([unit])
    hundredths = value / units[unit] * 100
    if hundredths != hundredths.to_integral_value():
        raise UnexpectedData(f"{value} is not a whole number of 0.01 of unit {unit:02X}")
    return encode_bcd(int(hundredths), 4) + bytes([unit])


def _encode_clock(clock: MeterClock | None) -> bytes:
    if clock is None:
        return bytes(CLOCK_BYTES)
    parts = (clock.second, clock.minute, clock.hour, clock.day, clock.month)
    return b"".join(encode_bcd(p, 1) for p in parts) + encode_bcd(clock.year, 2)


def encode_metering(data: MeteringData, meter_type: int, volume_unit: int = UNIT_M3,
                    heat_unit: int = UNIT_KWH) -> bytes:
    """The 901F payload after DI and SER, in the layout of `meter_type`."""
    status = data.status or Status()
    clock = _encode_clock(data.clock)
    flow = _encode_quantity(data.cumulative_flow, volume_unit, VOLUME_UNITS)
    tail = clock + bytes([status.st0, status.st1])
    if not is_heat_meter(meter_type):
        return flow + _encode_quantity(data.settlement_flow, volume_unit, VOLUME_UNITS) + tail
    heat = (_encode_quantity(data.settlement_heat, heat_unit, HEAT_UNITS)
            + _encode_quantity(data.current_heat, heat_unit, HEAT_UNITS))
    not_sent = b"\xff" * 4 + bytes([0x17]) + b"\xff" * 4 + bytes([0x35])  # power kW, flow m³/h
    return heat + not_sent + flow + b"\xff" * 9 + tail  # temperatures, hours: not provided
