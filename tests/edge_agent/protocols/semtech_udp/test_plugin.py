"""LoRaWAN device params and listener settings, through the real wiring of a gateway config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from device_profiles.schema import load_profiles
from edge_agent.config import GatewayConfig
from edge_agent.errors import ConfigError
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import ListenerContext
from edge_agent.protocols.chirpstack.listener import ChirpstackListener
from edge_agent.protocols.semtech_udp.config import LorawanParams, SemtechUdpConfig
from edge_agent.protocols.semtech_udp.listener import SemtechUdpListener
from edge_agent.protocols.semtech_udp.lorawan import FcntState
from edge_agent.protocols.semtech_udp.state import LorawanState, OtaaSession, session_key
from edge_agent.wiring import wire

NWK = "2b7e151628aed2a6abf7158809cf4f3c"
APP = "3c4fcf098815f7aba6d2ae2816157e2b"


@pytest.mark.parametrize("params", [
    pytest.param({"dev_addr": "26011BDA", "nwk_s_key": NWK, "app_s_key": APP}, id="ABP inline"),
    pytest.param({"dev_addr": "26011bda", "nwk_s_key_env": "NWK", "app_s_key_env": "APP",
                  "dev_eui": "0004a30b001c0530"}, id="ABP from the environment"),
    pytest.param({"dev_eui": "0004A30B001C0530"}, id="ChirpStack"),
    pytest.param({"dev_eui": "0004A30B001C0531", "app_key": NWK, "app_eui": "70b3d57ed0000001"},
                 id="OTAA"),
    pytest.param({"dev_eui": "0004A30B001C0531", "app_key_env": "KEY"}, id="OTAA from env"),
])
def test_valid_params(params: dict[str, str]) -> None:
    LorawanParams.model_validate(params)


@pytest.mark.parametrize(("params", "message"), [
    ({}, "give dev_addr with session keys"),
    ({"dev_addr": "26011BDA", "nwk_s_key": NWK}, "exactly one of app_s_key"),
    ({"dev_addr": "26011BDA", "nwk_s_key": NWK, "nwk_s_key_env": "N", "app_s_key": APP},
     "exactly one of nwk_s_key"),
    ({"dev_addr": "26011BDA", "nwk_s_key": NWK[:-2], "app_s_key": APP}, "32 hex digits"),
    ({"dev_addr": "26011BDA", "nwk_s_key": "zz" * 16, "app_s_key": APP}, "32 hex digits"),
    ({"dev_addr": "26011BD", "nwk_s_key": NWK, "app_s_key": APP}, "dev_addr"),
    ({"dev_eui": "0004a30b001c0530", "app_s_key": APP},
     "app_s_key does not belong to a ChirpStack device"),
    ({"dev_eui": "0004a30b001c0530", "app_key": APP, "nwk_s_key": NWK},
     "nwk_s_key does not belong to a OTAA device"),
    ({"app_key": APP}, "OTAA needs dev_eui"),
    ({"dev_eui": "0004a30b001c0530", "app_eui": "0000000000000001"}, "app_eui belongs"),
    ({"dev_eui": "0004a30b001c0530", "appkey": APP}, "Extra inputs"),
])
def test_invalid_params(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LorawanParams.model_validate(params)


def test_keys_never_show_in_repr_or_errors() -> None:
    params = LorawanParams.model_validate({"dev_addr": "26011BDA", "nwk_s_key": NWK,
                                           "app_s_key": APP})
    assert NWK not in repr(params) and APP not in str(params.model_dump())
    assert params.session_keys() == (bytes.fromhex(NWK), bytes.fromhex(APP))


def test_environment_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    params = LorawanParams.model_validate({"dev_addr": "26011BDA", "nwk_s_key_env": "T_NWK",
                                           "app_s_key_env": "T_APP"})
    monkeypatch.delenv("T_NWK", raising=False)
    with pytest.raises(ConfigError, match="T_NWK"):
        params.session_keys()
    monkeypatch.setenv("T_NWK", NWK)
    monkeypatch.setenv("T_APP", "not hex")
    with pytest.raises(ConfigError, match="T_APP"):
        params.session_keys()
    monkeypatch.setenv("T_APP", APP.upper())
    assert params.session_keys()[1] == bytes.fromhex(APP)


def test_listener_settings() -> None:
    settings = SemtechUdpConfig.model_validate({"kind": "semtech_udp", "port": 1700})
    assert (settings.host, settings.dedup_window_ms, settings.state_path) == ("127.0.0.1", 200,
                                                                              None)
    with pytest.raises(ValidationError, match="not 16 hex digits"):
        SemtechUdpConfig.model_validate({"kind": "semtech_udp", "gateways": ["aa55"]})
    with pytest.raises(ValidationError, match="Extra inputs"):
        SemtechUdpConfig.model_validate({"kind": "semtech_udp", "dedup_ms": 5})


def _gateway(devices: list[dict[str, object]], listeners: list[dict[str, object]]
             ) -> GatewayConfig:
    return GatewayConfig.model_validate({"gateway_id": "gw-1", "devices": devices,
                                         "listeners": listeners})


def test_wiring_gives_each_listener_its_devices() -> None:
    config = _gateway([
        {"id": "meter-1", "profile": "dc-lorawan-watermeter-v1",
         "params": {"dev_addr": "26011BDA", "nwk_s_key": NWK, "app_s_key": APP}},
        {"id": "smoke-9", "profile": "dc-lorawan-smoke-v1",
         "params": {"dev_eui": "0004a30b001c0530"}},
    ], [{"kind": "semtech_udp", "port": 1700}, {"kind": "chirpstack_mqtt", "port": 1883}])
    wiring = wire(config, load_profiles())
    assert wiring.polled == []
    metrics = EdgeMetrics("gw-1")
    built = [plugin.create(ListenerContext(settings, devices, metrics))
             for plugin, settings, devices in wiring.listeners]
    udp, mqtt = built
    assert isinstance(udp, SemtechUdpListener) and isinstance(mqtt, ChirpstackListener)
    assert [s.device_id for s in udp.sessions] == ["meter-1"]
    assert list(mqtt.devices) == ["0004a30b001c0530"]


def test_wiring_refuses_lorawan_devices_without_a_listener() -> None:
    config = _gateway([{"id": "smoke-9", "profile": "dc-lorawan-smoke-v1",
                        "params": {"dev_eui": "0004a30b001c0530"}}], [])
    with pytest.raises(ConfigError, match="add a listener"):
        wire(config, load_profiles())


def test_wiring_names_the_device_with_bad_params() -> None:
    config = _gateway([{"id": "meter-1", "profile": "dc-lorawan-watermeter-v1",
                        "params": {"dev_addr": "26011BDA"}}], [{"kind": "semtech_udp"}])
    with pytest.raises(ConfigError, match="meter-1"):
        wire(config, load_profiles())


def test_state_persists_counters_sessions_and_nonces(tmp_path: Path) -> None:
    path = tmp_path / "state" / "lorawan.sqlite"
    key = session_key("meter-1", 0x26011BDA, bytes.fromhex(NWK))
    state = LorawanState(path)
    state.open()
    state.put_fcnt(key, FcntState(70000, b"\x01\x02\x03\x04"))
    state.put_otaa_session("smoke-2", OtaaSession(0x00ABCDEF, b"n" * 16, b"a" * 16))
    state.use_dev_nonce("smoke-2", 4141)
    state.close()
    assert path.stat().st_mode & 0o077 == 0  # it holds session keys: owner only
    again = LorawanState(path)
    again.open()
    assert again.fcnt(key) == FcntState(70000, b"\x01\x02\x03\x04")
    assert again.otaa_session("smoke-2") == OtaaSession(0x00ABCDEF, b"n" * 16, b"a" * 16)
    assert again.dev_nonce_used("smoke-2", 4141) and not again.dev_nonce_used("smoke-2", 1)
    new_keys = session_key("meter-1", 0x26011BDA, bytes.fromhex(APP))
    assert again.fcnt(new_keys) is None  # re-provisioned device: a fresh counter
    assert NWK not in key and "6e6e" not in repr(again.otaa_session("smoke-2"))
    again.close()
    memory = LorawanState(None)
    memory.open()
    memory.put_fcnt(key, FcntState(1, b"\0" * 4))
    assert memory.fcnt(key) == FcntState(1, b"\0" * 4)


@pytest.mark.parametrize("sample", [
    "edge_agent/protocols/semtech_udp/sample.yaml",
    "edge_agent/protocols/chirpstack/sample.yaml",
])
def test_sample_configs_are_valid(sample: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METER_0001_NWKSKEY", "METER_0001_APPSKEY", "SMOKE_0001_APPKEY"):
        monkeypatch.setenv(name, NWK)
    document = yaml.safe_load((Path(__file__).parents[4] / sample).read_text(encoding="utf-8"))
    config = _gateway(document["devices"], document["listeners"])
    wiring = wire(config, load_profiles())
    metrics = EdgeMetrics("gw-1")
    for plugin, settings, devices in wiring.listeners:
        plugin.create(ListenerContext(settings, devices, metrics))
