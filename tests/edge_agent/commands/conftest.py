"""Shared fixtures: the shipped profiles and a pump station's reading history."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from device_profiles.schema import PROFILES_ROOT, Profile, load_profile
from edge_agent.commands.history import DeviceHistory

NOW = 1_764_060_000_000
QUIET = {"sump_level": 2.0, "pump1_running": False, "pump2_running": False}

Events = list[tuple[float, dict[str, object]]]


@pytest.fixture(scope="session")
def pump() -> Profile:
    return load_profile(PROFILES_ROOT / "pump_station" / "dc-pumpstation-v1.yaml")


@pytest.fixture(scope="session")
def pole() -> Profile:
    return load_profile(PROFILES_ROOT / "streetlight" / "dc-smartpole-v1.yaml")


@pytest.fixture
def now() -> int:
    return NOW


@pytest.fixture
def station() -> Callable[..., DeviceHistory]:
    """A history of a station watched for two hours with both pumps off and a full sump, then
    `events` (seconds before NOW, changed values; each reading carries every point), then a
    last reading `last_age_s` before NOW."""

    def build(events: Events = (), last_age_s: float = 1.0) -> DeviceHistory:
        history = DeviceHistory("pump-station-01")
        state = dict(QUIET)
        history.observe(NOW - 7_200_000, state)
        for ago_s, changes in sorted(events, key=lambda e: -e[0]):
            state.update(changes)
            history.observe(NOW - round(ago_s * 1000), state)
        history.observe(NOW - round(last_age_s * 1000), state)
        return history

    return build
