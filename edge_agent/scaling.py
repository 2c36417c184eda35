"""Raw device values -> engineering values, for every protocol, in one documented order.

    engineering = raw * scale + offset

Booleans pass unchanged. Integer points with scale 1 and offset 0 stay integers (they are
written to InfluxDB as integers). Results are rounded to 10 decimals so 2201 * 0.1 reads 220.1,
not 220.10000000000002.
"""

from __future__ import annotations

from device_profiles.schema import DataType, Point

Value = bool | int | float


def to_engineering(point: Point, raw: bool | int | float) -> Value:
    """Scale a raw value of `point`."""
    if point.type == DataType.bool:
        return bool(raw)
    if point.is_integer:
        return int(raw)
    if point.scale == 1.0 and point.offset == 0.0:
        return float(raw)
    return round(raw * point.scale + point.offset, 10)


def to_raw(point: Point, value: Value) -> bool | int | float:
    """The raw value that reads back as `value` (used by simulators and, later, commands)."""
    if point.type == DataType.bool:
        return bool(value)
    raw = (float(value) - point.offset) / point.scale
    return raw if point.type == DataType.float32 else round(raw)
