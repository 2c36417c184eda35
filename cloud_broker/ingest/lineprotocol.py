"""InfluxDB line protocol, with the escaping rules of every element. Pure.

    measurement,tag=value,tag2=value2 field=1.5,flag=true,count=3i,text="a \\"b\\"" 1700000000123

- measurement: escape ``,`` and space;
- tag keys, tag values, field keys: escape ``,``, ``=`` and space;
- string field values: double quotes, escape ``"`` and ``\\``;
- integers end in ``i``, booleans are ``true``/``false``, floats use repr (never NaN/inf);
- newlines are not allowed anywhere except inside string fields (escaped here as ``\\n``);
  a tag value cannot be empty (the tag is left out) and no key or tag may end in a
  backslash (it would escape the separator): such values are rejected.
Timestamps are milliseconds (write with ``precision=ms``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

FieldValue = bool | int | float | str


class LineProtocolError(ValueError):
    """A value that line protocol cannot carry."""


_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n"})


def _no_newline(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise LineProtocolError(f"{what} {text!r} contains a newline")
    return text


def escape_measurement(name: str) -> str:
    if not name:
        raise LineProtocolError("measurement is empty")
    return _no_newline(name, "measurement").translate(_MEASUREMENT)


@lru_cache(maxsize=8192)
def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key."""
    if not key:
        raise LineProtocolError("key is empty")
    if key.endswith("\\"):
        raise LineProtocolError(f"key {key!r} ends in a backslash (it would escape the "
                                "separator)")
    return _no_newline(key, "key").translate(_KEY)


def format_field(value: FieldValue) -> str:
    value_type = type(value)
    if value_type is float and math.isfinite(value):  # the common case first
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field value {value} is not finite")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_STRING) + '"'
    raise LineProtocolError(f"unsupported field type {type(value).__name__}")


def format_line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue],
                ts_ms: int) -> str:
    """One point; tags are sorted by key (InfluxDB's preferred order); empty tags are left out."""
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    head = escape_measurement(measurement)
    tag_part = "".join(f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v)
    field_part = ",".join(f"{escape_key(k)}={format_field(v)}" for k, v in fields.items())
    return f"{head}{tag_part} {field_part} {int(ts_ms)}"
