"""Every validation rule with an entry that breaks it (and a valid entry breaking none)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from cloud_broker.registry.store import Device, Gateway
from cloud_broker.registry.validation import (
    DEVICE_RULES,
    DISTRICT_BBOX,
    GATEWAY_RULES,
    Context,
    check_device,
    check_gateway,
)
from device_profiles.schema import ProfileSet

Factory = Callable[..., Device]
GATEWAYS = {"gw-a": "active", "gw-old": "revoked"}
METER_PORT = "/dev/ttyUSB0"

# id, base entry ("pole": modbus_tcp, "meter": cjt188), changed fields, failing rule, words
DEVICE_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("bad_id", "pole", {"id": "pole/001"}, "id_valid", "not valid"),
    ("id_too_long", "pole", {"id": "p" * 65}, "id_valid", "not valid"),
    ("taken_id", "pole", {"id": "pole-taken"}, "id_unique", "already registered"),
    ("unknown_profile", "pole", {"profile": "no-such"}, "profile_exists", "unknown profile"),
    ("unknown_gateway", "pole", {"gateway": "gw-nope"}, "gateway_active", "unknown gateway"),
    ("revoked_gateway", "pole", {"gateway": "gw-old"}, "gateway_active", "is revoked"),
    ("lat_outside", "pole", {"lat": 39.9}, "in_district", "outside the district"),
    ("lat_lon_swapped", "pole", {"lat": 115.98, "lon": 36.45}, "in_district", "outside"),
    ("bad_install_date", "pole", {"install_date": "2025-13-01"}, "install_date", "not a date"),
    ("tcp_without_host", "pole", {"host": None}, "transport_fits", "modbus_tcp needs host"),
    ("tcp_without_unit", "pole", {"unit": None}, "transport_fits", "modbus_tcp needs unit"),
    ("tcp_bad_port", "pole", {"port": 70000}, "transport_fits", "not 1-65535"),
    ("tcp_with_params", "pole", {"params": {"x": 1}}, "transport_fits", "not params"),
    ("cjt188_with_host", "meter", {"host": "10.0.0.9"}, "transport_fits", "not host"),
    ("cjt188_bad_address", "meter", {"params": {"serial_port": METER_PORT, "address": "12"}},
     "transport_fits", "address"),
    ("cjt188_no_serial_port", "meter", {"params": {"address": "12345678901234"}},
     "transport_fits", "serial_port"),
    ("cjt188_unknown_param", "meter", {"params": {"serial_port": METER_PORT, "speed": 1,
                                                  "address": "12345678901234"}},
     "transport_fits", "speed"),
]


@pytest.fixture
def ctx(profiles: ProfileSet) -> Context:
    return Context(profiles=profiles, gateways=GATEWAYS, taken_ids={"pole-taken"})


def test_valid_devices_pass(pole: Factory, meter: Factory, ctx: Context) -> None:
    assert check_device(pole(), ctx) == []
    assert check_device(meter(), ctx) == []


@pytest.mark.parametrize(("base", "changes", "rule", "words"), [c[1:] for c in DEVICE_CASES],
                         ids=[c[0] for c in DEVICE_CASES])
def test_device_rule_fails(base: str, changes: dict[str, Any], rule: str, words: str,
                           ctx: Context, pole: Factory, meter: Factory) -> None:
    device = (pole if base == "pole" else meter)(**changes)
    problems = DEVICE_RULES[rule](device, ctx)
    assert any(words in p for p in problems), problems
    assert set(problems) <= set(check_device(device, ctx))


def test_every_device_rule_has_a_failing_case() -> None:
    assert {c[3] for c in DEVICE_CASES} == set(DEVICE_RULES)


def test_all_problems_are_listed_at_once(ctx: Context, pole: Factory) -> None:
    problems = check_device(pole("bad/id", gateway="gw-nope", lat=0.0, host=None), ctx)
    assert len(problems) == 4, problems


def test_district_bbox_is_dongchang() -> None:
    assert DISTRICT_BBOX.contains(36.45, 115.98)  # 聊城市东昌府区
    assert not DISTRICT_BBOX.contains(36.65, 117.0)  # Jinan


GOOD_GATEWAY = Gateway("gw-new", "东昌路", "古楼街道", 36.45, 115.98)
GATEWAY_CASES = [
    ("bad_id", replace(GOOD_GATEWAY, id="-gw"), "id_valid"),
    ("taken_id", replace(GOOD_GATEWAY, id="gw-a"), "id_unique"),
    ("no_site", replace(GOOD_GATEWAY, site=" "), "site_given"),
    ("outside", replace(GOOD_GATEWAY, lon=117.0), "in_district"),
]


@pytest.mark.parametrize(("gateway", "rule"), [c[1:] for c in GATEWAY_CASES],
                         ids=[c[0] for c in GATEWAY_CASES])
def test_gateway_rule_fails(gateway: Gateway, rule: str, profiles: ProfileSet) -> None:
    ctx = Context(profiles=profiles, taken_ids={"gw-a"})
    assert GATEWAY_RULES[rule](gateway, ctx)
    assert check_gateway(gateway, ctx)
    assert check_gateway(GOOD_GATEWAY, ctx) == []


def test_every_gateway_rule_has_a_failing_case() -> None:
    assert {c[2] for c in GATEWAY_CASES} == set(GATEWAY_RULES)
