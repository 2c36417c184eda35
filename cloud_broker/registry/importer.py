"""CSV import of device instances: every row validated, all rows imported or none.

Columns: ``id,name,profile,gateway,lat,lon,install_date`` then either ``host,port,unit``
(modbus_tcp) or ``params`` (a JSON object, other protocols); a file may carry all four and
leave the unused cells empty. A file with a bad row imports nothing unless `skip_invalid`,
in which case the good rows are imported. Every bad row is returned with its line number.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cloud_broker.registry.provisioning import context
from cloud_broker.registry.store import Device, Registry
from cloud_broker.registry.validation import check_device
from device_profiles.schema import ProfileSet

REQUIRED = ("id", "name", "profile", "gateway", "lat", "lon", "install_date")
OPTIONAL = ("host", "port", "unit", "params")


class ImportFileError(ValueError):
    """The file itself is unusable (unreadable, missing or unknown columns)."""


@dataclass(frozen=True)
class BadRow:
    line: int
    device_id: str
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    imported: list[str] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def _cell(row: dict[str, str | None], key: str) -> str | None:
    value = (row.get(key) or "").strip()
    return value or None


def _number(row: dict[str, str | None], key: str, kind: type[Any]) -> Any:
    value = _cell(row, key)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{key} {value!r} is not a{'n integer' if kind is int else ' number'}"
                         ) from None


def parse_row(row: dict[str, str | None]) -> Device:
    """One CSV row as a Device; ValueError names the cell that cannot be read."""
    lat, lon = _number(row, "lat", float), _number(row, "lon", float)
    if lat is None or lon is None:
        raise ValueError("lat and lon are needed")
    params: Any = {}
    raw = _cell(row, "params")
    if raw is not None:
        try:
            params = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"params is not JSON: {err.msg}") from err
        if not isinstance(params, dict):
            raise ValueError("params must be a JSON object")
    device_id = _cell(row, "id") or ""
    return Device(id=device_id, name=_cell(row, "name") or device_id,
                  profile=_cell(row, "profile") or "", gateway=_cell(row, "gateway") or "",
                  lat=lat, lon=lon, host=_cell(row, "host"), port=_number(row, "port", int),
                  unit=_number(row, "unit", int), params=params,
                  install_date=_cell(row, "install_date"))


def read_rows(path: Path) -> list[tuple[int, dict[str, str | None]]]:
    """(line number, row) for every data row; ImportFileError if the header is wrong."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in header]
            unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
            if missing or unknown:
                raise ImportFileError(f"{path}: missing columns {missing}, unknown {unknown}")
            rows = []
            for row in reader:
                rows.append((reader.line_num, dict(row)))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ImportFileError(f"{path}: cannot read: {err}") from err
    return rows


def import_devices(registry: Registry, profiles: ProfileSet, path: Path,
                   skip_invalid: bool = False,
                   on_row: Callable[[int, int], None] | None = None) -> ImportReport:
    """Validate every row of the file, then import all (or, with skip_invalid, the good ones).

    `on_row(done, total)` is called after each row is checked (for a progress bar).
    """
    rows = read_rows(path)
    report = ImportReport(rows=len(rows))
    taken = registry.device_ids()  # grows with the file's good rows: duplicates are bad rows
    ctx = replace(context(registry, profiles), taken_ids=taken)
    good: list[Device] = []
    for done, (line, row) in enumerate(rows, start=1):
        device_id = _cell(row, "id") or ""
        try:
            device = parse_row(row)
        except ValueError as err:
            report.bad.append(BadRow(line, device_id, str(err)))
        else:
            problems = check_device(device, ctx)
            if problems:
                report.bad.append(BadRow(line, device_id, "; ".join(problems)))
            else:
                good.append(device)
                taken.add(device.id)
        if on_row is not None:
            on_row(done, len(rows))
    if report.bad and not skip_invalid:
        return report
    registry.add_devices(good)
    report.imported = [d.id for d in good]
    return report
