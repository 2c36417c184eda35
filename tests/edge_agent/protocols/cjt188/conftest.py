"""A simulated CJ/T 188 meter bus on a real pseudo-terminal, and the agent's bus on its tty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal

import pytest

from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.cjt188.metering import ValveState
from edge_agent.protocols.cjt188.transport import Cjt188Bus, SerialSettings
from firmware_sims.cjt188_meter import Cjt188MeterBus, SimMeter

METER_A = "78330123456789"
METER_B = "00000000000001"
# This kernel's pty driver refuses PARENB (tcsetattr: EINVAL), and a pty has no parity bits
# anyway: tests open it 8N1. Real meters use the 8E1 default.
PTY_PARITY = "N"


def two_meters() -> list[SimMeter]:
    return [SimMeter(METER_A, cumulative_m3=Decimal("1234.56"), settlement_m3=Decimal("1200.00"),
                     clock=datetime(2024, 5, 6, 7, 8, 9)),
            SimMeter(METER_B, cumulative_m3=Decimal("0.07"), valve=ValveState.CLOSED,
                     battery_low=True)]


@pytest.fixture
def meters() -> list[SimMeter]:
    return two_meters()


@pytest.fixture
async def sim(meters: list[SimMeter]) -> AsyncIterator[Cjt188MeterBus]:
    async with Cjt188MeterBus(meters) as bus_sim:
        yield bus_sim


@pytest.fixture
def metrics() -> EdgeMetrics:
    return EdgeMetrics("gw-test")


@pytest.fixture
async def bus(sim: Cjt188MeterBus, metrics: EdgeMetrics) -> AsyncIterator[Cjt188Bus]:
    agent_bus = Cjt188Bus(SerialSettings(sim.port, 2400, PTY_PARITY), metrics)
    yield agent_bus
    await agent_bus.close()


@pytest.fixture
def rejected(metrics: EdgeMetrics) -> Callable[[str], float]:
    """`rejected(reason)`: frames_rejected{protocol=cjt188, reason} so far."""

    def count(reason: str) -> float:
        value = metrics.registry.get_sample_value(
            "dciot_edge_frames_rejected_total", {"protocol": "cjt188", "reason": reason})
        return value or 0.0

    return count
