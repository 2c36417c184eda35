"""The CJ/T 188 driver and plugin: the shipped water-meter profile read from simulated meters on
a pty, raw values by point name; params validated; one bus per serial port."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from device_profiles.schema import PROFILES_ROOT, load_profile
from edge_agent.config import DeviceConfig
from edge_agent.errors import ConfigError, DeviceException, FrameError
from edge_agent.protocols import BusPool, cjt188, create_driver, protocol_plugin
from edge_agent.protocols.base import validate_params
from edge_agent.protocols.cjt188.codec import BROADCAST, parse_address
from edge_agent.protocols.cjt188.driver import Cjt188Driver
from edge_agent.protocols.cjt188.metering import ValveState
from edge_agent.protocols.cjt188.plugin import Cjt188Params
from edge_agent.protocols.cjt188.transport import Cjt188Bus, SerialSettings
from firmware_sims.cjt188_meter import Cjt188MeterBus, SimMeter

from .conftest import METER_A, METER_B, PTY_PARITY

PROFILE = load_profile(PROFILES_ROOT / "water_meter" / "dc-watermeter-cjt188-v1.yaml")
CST = timezone(timedelta(hours=8))


async def test_profile_points_read_as_raw_values(bus: Cjt188Bus) -> None:
    a = await Cjt188Driver(PROFILE, bus, parse_address(METER_A)).read()
    assert a == {"cumulative_flow": 1234.56, "settlement_flow": 1200.0,
                 "meter_time": int(datetime(2024, 5, 6, 7, 8, 9, tzinfo=CST).timestamp()),
                 "valve_open": True, "valve_abnormal": False, "battery_low": False,
                 "status": 0}
    b = await Cjt188Driver(PROFILE, bus, parse_address(METER_B)).read()
    assert (b["valve_open"], b["battery_low"], b["status"]) == (False, True, 0x05)
    assert "settlement_flow" not in b  # the meter sends FF: not provided


async def test_fault_injection_reaches_the_points(sim: Cjt188MeterBus, bus: Cjt188Bus) -> None:
    driver = Cjt188Driver(PROFILE, bus, parse_address(METER_A))
    sim.set_valve(METER_A, ValveState.ABNORMAL)
    sim.set_battery_low(METER_A)
    raw = await driver.read()
    assert (raw["valve_open"], raw["valve_abnormal"], raw["battery_low"]) == (False, True, True)


async def test_cumulative_flow_grows_with_the_flow_rate(meters: list[SimMeter]) -> None:
    now = [1000.0]
    async with Cjt188MeterBus(meters, monotonic=lambda: now[0]) as sim:
        bus = Cjt188Bus(SerialSettings(sim.port, 2400, PTY_PARITY))
        driver = Cjt188Driver(PROFILE, bus, parse_address(METER_A))
        sim.set_flow_rate(METER_A, Decimal("1.2"))  # m³/h
        now[0] += 1800  # half an hour later
        assert (await driver.read())["cumulative_flow"] == 1235.16
        await bus.close()


async def test_clock_zone_comes_from_the_params(bus: Cjt188Bus) -> None:
    utc = await Cjt188Driver(PROFILE, bus, parse_address(METER_A), clock_utc_offset_h=0).read()
    assert utc["meter_time"] == int(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC).timestamp())


async def test_error_answer_is_a_device_exception(sim: Cjt188MeterBus, bus: Cjt188Bus) -> None:
    sim.refuse_next_read(METER_B)
    with pytest.raises(DeviceException) as caught:
        await Cjt188Driver(PROFILE, bus, parse_address(METER_B)).read()
    assert caught.value.code == 0x0005  # ST of the refusal: closed, battery low


async def test_unknown_unit_is_a_frame_error_and_counted(
        sim: Cjt188MeterBus, bus: Cjt188Bus, rejected: Callable[[str], float]) -> None:
    driver = Cjt188Driver(PROFILE, bus, parse_address(METER_A))
    sim.set_unit_code(METER_A, 0x35)  # m³/h is no volume unit
    with pytest.raises(FrameError, match="unit code 35"):
        await driver.read()
    assert rejected("unknown_unit") == 1
    sim.set_unit_code(METER_A, None)
    assert (await driver.read())["cumulative_flow"] == 1234.56


async def test_meter_counting_in_litres_reads_in_m3(meters: list[SimMeter]) -> None:
    meters[0].volume_unit = 0x29  # 8 digits of 0.01 L: at most 999.99999 m³
    meters[0].cumulative_m3, meters[0].settlement_m3 = Decimal("345.67"), Decimal("300.5")
    async with Cjt188MeterBus(meters) as sim:
        bus = Cjt188Bus(SerialSettings(sim.port, 2400, PTY_PARITY))
        raw = await Cjt188Driver(PROFILE, bus, parse_address(METER_A)).read()
        assert (raw["cumulative_flow"], raw["settlement_flow"]) == (345.67, 300.5)
        await bus.close()


async def test_broadcast_address_reads_the_only_meter() -> None:
    async with Cjt188MeterBus([SimMeter(METER_A)]) as sim:
        bus = Cjt188Bus(SerialSettings(sim.port, 2400, PTY_PARITY))
        raw = await Cjt188Driver(PROFILE, bus, BROADCAST).read()
        assert raw["cumulative_flow"] == 0.0
        await bus.close()


# --- plugin --------------------------------------------------------------------------

def device(**params: Any) -> tuple[DeviceConfig, Cjt188Params]:
    config = DeviceConfig(id="wm-1", profile=PROFILE.id, params=params)
    plugin = protocol_plugin("cjt188")
    validated = validate_params(plugin.params_model, config.params, "device wm-1")
    assert isinstance(validated, Cjt188Params)
    return config, validated


def test_params_defaults() -> None:
    _, params = device(serial_port="/dev/ttyUSB0", address=METER_A)
    assert (params.baudrate, params.parity, params.clock_utc_offset_h) == (2400, "E", 8.0)


@pytest.mark.parametrize("bad", [
    pytest.param({"address": "7833012345678"}, id="13-digits"),
    pytest.param({"address": "7833012345678G"}, id="not-hex"),
    pytest.param({"baudrate": 2401}, id="odd-baud-rate"),
    pytest.param({"parity": "M"}, id="mark-parity"),
    pytest.param({"unit": 1}, id="unknown-key"),
])
def test_bad_params_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        device(**{"serial_port": "/dev/ttyUSB0", "address": METER_A, **bad})


def test_meters_on_one_port_share_one_bus() -> None:
    pool = BusPool()
    first = create_driver(*device(serial_port="/dev/ttyUSB0", address=METER_A), PROFILE, pool)
    second = create_driver(*device(serial_port="/dev/ttyUSB0", address=METER_B), PROFILE, pool)
    other = create_driver(*device(serial_port="/dev/ttyUSB1", address=METER_A), PROFILE, pool)
    assert isinstance(first, Cjt188Driver) and isinstance(second, Cjt188Driver)
    assert isinstance(other, Cjt188Driver)
    assert first.bus is second.bus and other.bus is not first.bus
    assert len(pool.buses) == 2


def test_meters_on_one_port_must_agree_on_its_settings() -> None:
    pool = BusPool()
    create_driver(*device(serial_port="/dev/ttyUSB0", address=METER_A), PROFILE, pool)
    with pytest.raises(ConfigError, match="share baud rate"):
        create_driver(*device(serial_port="/dev/ttyUSB0", address=METER_B, baudrate=9600),
                      PROFILE, pool)


def test_sample_config_is_valid() -> None:
    sample = Path(cjt188.__file__).with_name("sample.yaml")
    entries = yaml.safe_load(sample.read_text(encoding="utf-8"))
    pool = BusPool()
    drivers = [create_driver(*device_entry(e), PROFILE, pool) for e in entries]
    assert len(drivers) == 2 and len(pool.buses) == 1


def device_entry(entry: dict[str, Any]) -> tuple[DeviceConfig, Cjt188Params]:
    config = DeviceConfig.model_validate(entry)
    assert config.profile == PROFILE.id
    params = validate_params(Cjt188Params, config.params, config.id)
    assert isinstance(params, Cjt188Params)
    return config, params
