"""CSV import: all rows or none, every bad row with its line number and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_broker.registry.importer import ImportFileError, import_devices
from cloud_broker.registry.store import Registry
from device_profiles.schema import ProfileSet

HEADER = "id,name,profile,gateway,lat,lon,install_date,host,port,unit,params\n"
GOOD = [
    "pole-001,东昌路1号灯杆,dc-smartpole-v1,gw-a,36.451,115.981,2025-03-01,10.0.0.5,502,1,\n",
    'wm-001,1号水表,dc-watermeter-cjt188-v1,gw-b,36.46,115.99,,,,,'
    '"{""serial_port"": ""/dev/ttyUSB0"", ""address"": ""12345678901234""}"\n',
]
BAD = [  # (row, words of the reason)
    ("pole-002,x,dc-smartpole-v1,gw-a,36.45,115.98,,,502,1,\n", "needs host"),
    ("pole-003,x,dc-smartpole-v1,gw-a,north,115.98,,10.0.0.5,502,1,\n", "lat 'north'"),
    ("pole-001,x,dc-smartpole-v1,gw-a,36.45,115.98,,10.0.0.5,502,2,\n", "already registered"),
    ("pole-004,x,dc-smartpole-v1,gw-old,36.45,115.98,,10.0.0.5,502,3,\n", "is revoked"),
    ('wm-002,x,dc-watermeter-cjt188-v1,gw-a,36.45,115.98,,,,,"{bad json"\n', "not JSON"),
]


def _write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "devices.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def test_good_file_imports_every_row(registry: Registry, profiles: ProfileSet,
                                     tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    report = import_devices(registry, profiles, _write(tmp_path, GOOD),
                            on_row=lambda done, total: seen.append((done, total)))
    assert report.imported == ["pole-001", "wm-001"] and report.bad == []
    assert seen == [(1, 2), (2, 2)]
    assert registry.get_device("wm-001").params["address"] == "12345678901234"
    assert registry.get_device("pole-001").install_date == "2025-03-01"


def test_bad_rows_import_nothing_and_are_each_reported(registry: Registry,
                                                       profiles: ProfileSet,
                                                       tmp_path: Path) -> None:
    report = import_devices(registry, profiles, _write(tmp_path, GOOD + [b for b, _ in BAD]))
    assert report.imported == []
    assert registry.device_ids() == set()
    assert [b.line for b in report.bad] == [4, 5, 6, 7, 8]
    for bad, (_, words) in zip(report.bad, BAD, strict=True):
        assert words in bad.reason, bad


def test_skip_invalid_imports_the_good_rows(registry: Registry, profiles: ProfileSet,
                                            tmp_path: Path) -> None:
    report = import_devices(registry, profiles, _write(tmp_path, GOOD + [b for b, _ in BAD]),
                            skip_invalid=True)
    assert report.imported == ["pole-001", "wm-001"]
    assert registry.device_ids() == {"pole-001", "wm-001"}
    assert len(report.bad) == len(BAD)


def test_wrong_header_is_a_file_error(registry: Registry, profiles: ProfileSet,
                                      tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text("id,name,colour\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="missing columns"):
        import_devices(registry, profiles, path)
