"""Profile validation: the shipped profiles are valid; each kind of mistake is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dciot.cli.main import app
from device_profiles.schema import PROFILES_ROOT, ProfileError, check_profiles, load_profile

SHIPPED = sorted(PROFILES_ROOT.rglob("*.yaml"))


def test_shipped_profiles_are_valid() -> None:
    good, errors = check_profiles()
    assert errors == []
    assert {p.id for p in good} >= {"dc-smartpole-v1", "dc-pumpstation-v1"}


def _base() -> dict[str, object]:
    return yaml.safe_load((PROFILES_ROOT / "pump_station" / "dc-pumpstation-v1.yaml").read_text())


def _write(tmp_path: Path, data: dict[str, object], name: str = "dc-pumpstation-v1") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _point(data: dict[str, object], name: str) -> dict[str, object]:
    points = data["points"]
    assert isinstance(points, list)
    return next(p for p in points if p["name"] == name)


MISTAKES = [
    pytest.param(lambda d: _point(d, "flow").update(type="float64"), "points[8] (flow).type",
                 id="unknown-type"),
    pytest.param(lambda d: _point(d, "pump1_running").update(type="float32"),
                 "cannot live in a discrete_input", id="float-in-bit-table"),
    pytest.param(lambda d: _point(d, "fault_code").update(word_order="little"),
                 "word_order applies only to 32-bit", id="word-order-on-16-bit"),
    pytest.param(lambda d: _point(d, "pump1_fault").update(scale=0.1), "takes no scale",
                 id="scaled-bool"),
    pytest.param(lambda d: _point(d, "sump_level").update(unit="furlong"), "unit 'furlong'",
                 id="unknown-unit"),
    pytest.param(lambda d: _point(d, "flow").update(address=11), "overlaps 'sump_level'",
                 id="overlapping-registers"),
    pytest.param(lambda d: _point(d, "pump2_fault").update(bit=0), "overlaps 'pump1_fault'",
                 id="same-bit-twice"),
    pytest.param(lambda d: _point(d, "sump_level").update(access="read_write"), "read-only",
                 id="writable-input-register"),
    pytest.param(lambda d: _point(d, "flow").update(colour="blue"), "Extra inputs",
                 id="unknown-field"),
    pytest.param(lambda d: d["alarms"][0].update(point="nope"), "unknown point 'nope'",
                 id="alarm-unknown-point"),
    pytest.param(lambda d: d["alarms"][0].update(clear_at=9.0), "clear_at must be <= raise_at",
                 id="alarm-inverted-hysteresis"),
    pytest.param(lambda d: d["alarms"][0].update(title_zh="{nope}"), "title_zh template",
                 id="alarm-bad-template"),
    pytest.param(lambda d: d.update(id="other-id"), "must equal the file name", id="id-vs-file"),
]


@pytest.mark.parametrize(("mutate", "expected"), MISTAKES)
def test_mistakes_are_reported_with_their_place(tmp_path: Path, mutate, expected: str) -> None:
    data = _base()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.path == path
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_cli_check_lists_every_error_and_exits_non_zero(tmp_path: Path) -> None:
    data = _base()
    _point(data, "flow").update(type="float64")
    _point(data, "sump_level").update(unit="furlong")
    _write(tmp_path, data)
    result = CliRunner().invoke(app, ["profiles", "check", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 1
    assert "dc-pumpstation-v1.yaml" in result.output
    assert "points[8] (flow).type" in result.output
    assert "furlong" in result.output


def test_cli_check_passes_on_shipped_profiles() -> None:
    result = CliRunner().invoke(app, ["profiles", "check"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "dc-smartpole-v1" in result.output
