"""Bus time of RS-485 polls: character times, frame sizes, over-subscription."""

from __future__ import annotations

import pytest

from device_profiles.schema import Profile, RegisterType, load_profiles
from edge_agent.config import DeviceConfig
from edge_agent.protocols.modbus.bus_budget import (
    SerialLine,
    bus_budgets,
    cycle_s,
    poll_s,
    response_bytes,
    rtu_bus_warnings,
)
from edge_agent.protocols.modbus.planner import ReadRequest, plan_reads
from edge_agent.protocols.modbus.plugin import ModbusRtuParams

PROFILES = load_profiles()


@pytest.mark.parametrize(("line", "bits"), [
    (SerialLine(9600, "E", 1), 11), (SerialLine(9600, "O", 1), 11),
    (SerialLine(9600, "N", 2), 11), (SerialLine(9600, "N", 1), 10),
])
def test_bits_per_character(line: SerialLine, bits: int) -> None:
    assert line.bits_per_char == bits


@pytest.mark.parametrize(("baud", "silence_ms"), [
    (9600, 3.5 * 11 / 9.6),     # 4.01 ms
    (19200, 3.5 * 11 / 19.2),   # 2.01 ms: still 3.5 characters at 19200
    (38400, 1.75),              # fixed above 19200 baud (serial line spec §2.5.1.1)
    (115200, 1.75),
])
def test_inter_frame_silence(baud: int, silence_ms: float) -> None:
    assert SerialLine(baud, "E", 1).silence_s * 1000 == pytest.approx(silence_ms)


@pytest.mark.parametrize(("table", "count", "size"), [
    (RegisterType.holding, 10, 25), (RegisterType.input, 1, 7),
    (RegisterType.coil, 37, 10), (RegisterType.discrete_input, 8, 6),
])
def test_response_sizes(table: RegisterType, count: int, size: int) -> None:
    assert response_bytes(ReadRequest(table, 0, count, ())) == size


def test_cycle_of_ten_registers_at_9600_8e1() -> None:
    # 8 request + 25 answer bytes of 11 bits at 9600 baud, 5 ms turnaround, 3.5 chars silence
    expected = 33 * 11 / 9600 + 0.005 + 3.5 * 11 / 9600
    read = ReadRequest(RegisterType.holding, 0, 10, ())
    assert cycle_s(SerialLine(9600, "E", 1), read) == pytest.approx(expected)
    assert cycle_s(SerialLine(9600, "E", 1), read, turnaround_s=0.02) == pytest.approx(
        expected + 0.015)


def test_poll_adds_up_the_planned_reads() -> None:
    profile = PROFILES.get("dc-elecfire-v1")
    requests = plan_reads(profile.points, profile.protocol)  # type: ignore[arg-type]
    assert [(r.table, r.start, r.count) for r in requests] == [(RegisterType.input, 0, 9)]
    assert poll_s(SerialLine(9600, "N", 2), requests) == pytest.approx(
        (8 + 23) * 11 / 9600 + 0.005 + 3.5 * 11 / 9600)


def _instances(n: int, interval_s: float, port: str = "/dev/ttyUSB0", baud: int = 9600,
               profile: str = "dc-elecfire-v1") -> list[tuple[DeviceConfig, object, Profile]]:
    params = ModbusRtuParams(serial_port=port, baudrate=baud, parity="E", stopbits=1)
    return [(DeviceConfig(id=f"{port[-4:]}-{i}", profile=profile, interval_s=interval_s),
             params.model_copy(update={"unit": i}), PROFILES.get(profile))
            for i in range(1, n + 1)]


def test_bus_within_budget_gives_no_warning() -> None:
    (budget,) = bus_budgets(_instances(10, 10.0))
    assert budget.port == "/dev/ttyUSB0" and len(budget.devices) == 10
    assert budget.needed_s_per_s == pytest.approx(10 * 0.04455 / 10, rel=1e-3)
    assert not budget.over_subscribed
    assert rtu_bus_warnings(_instances(10, 10.0)) == []


def test_over_subscribed_bus_is_named_with_its_busiest_devices() -> None:
    # 30 detectors every second need 30 x 44.6 ms = 1.34 s of bus time per second
    slow_bus = _instances(30, 1.0)
    fast_bus = _instances(30, 1.0, port="/dev/ttyUSB1", baud=115200)
    tcp = [(DeviceConfig(id="ps-01", profile="dc-pumpstation-v1"), None,
            PROFILES.get("dc-pumpstation-v1"))]
    budgets = bus_budgets(slow_bus + fast_bus + tcp)
    assert [b.port for b in budgets] == ["/dev/ttyUSB0", "/dev/ttyUSB1"]
    assert budgets[0].over_subscribed and not budgets[1].over_subscribed
    (warning,) = rtu_bus_warnings(slow_bus + fast_bus + tcp)
    assert "/dev/ttyUSB0 at 9600 8E1 is over-subscribed" in warning
    assert "1.34 s of bus time per second" in warning
    assert "USB0-1 45 ms every 1 s" in warning
