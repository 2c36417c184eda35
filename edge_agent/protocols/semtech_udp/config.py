"""Settings of the LoRaWAN pieces: device params (`LorawanParams`, gateway config
`devices[].params`) and the `semtech_udp` listener entry (`SemtechUdpConfig`).

Device params take one of three shapes:

- ABP through gateways: `dev_addr` plus `nwk_s_key` and `app_s_key` (32 hex digits each) or
  `nwk_s_key_env` / `app_s_key_env` naming environment variables;
- OTAA through gateways: `dev_eui` plus `app_key` (or `app_key_env`), optionally `app_eui`;
- from ChirpStack (the `chirpstack_mqtt` listener): `dev_eui` only.

`dev_eui` may accompany ABP keys as documentation. Keys are SecretStr: never printed or logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from edge_agent.errors import ConfigError

HEX8 = r"^[0-9A-Fa-f]{8}$"
HEX16 = r"^[0-9A-Fa-f]{16}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _hex_key(value: str, what: str) -> bytes:
    if len(value) != 32:
        raise ValueError(f"{what} must be 32 hex digits (AES-128), got {len(value)} characters")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{what} must be 32 hex digits") from None


class LorawanParams(_Frozen):
    """One LoRaWAN device instance: its ABP session, its OTAA root key, or its DevEUI in
    ChirpStack."""

    dev_addr: str | None = Field(None, pattern=HEX8, description="ABP DevAddr, 8 hex digits "
                                 "as displayed (big-endian, e.g. 26011BDA)")
    nwk_s_key: SecretStr | None = Field(None, description="ABP network session key, 32 hex "
                                        "digits")
    nwk_s_key_env: str | None = Field(None, pattern=ENV_NAME, description="or: environment "
                                      "variable holding it")
    app_s_key: SecretStr | None = Field(None, description="ABP application session key, 32 hex "
                                        "digits")
    app_s_key_env: str | None = Field(None, pattern=ENV_NAME, description="or: environment "
                                      "variable holding it")
    dev_eui: str | None = Field(None, pattern=HEX16, description="DevEUI, 16 hex digits: the "
                                "OTAA device's identity, or how chirpstack_mqtt finds it")
    app_key: SecretStr | None = Field(None, description="OTAA root key (AppKey), 32 hex digits")
    app_key_env: str | None = Field(None, pattern=ENV_NAME, description="or: environment "
                                    "variable holding it")
    app_eui: str | None = Field(None, pattern=HEX16, description="OTAA AppEUI/JoinEUI a "
                                "join-request must carry (null: any)")

    @model_validator(mode="after")
    def _one_shape(self) -> LorawanParams:
        pairs = {"nwk_s_key": (self.nwk_s_key, self.nwk_s_key_env),
                 "app_s_key": (self.app_s_key, self.app_s_key_env),
                 "app_key": (self.app_key, self.app_key_env)}
        given = {name for name, pair in pairs.items() if any(v is not None for v in pair)}
        if self.dev_addr is not None:
            wanted = {"nwk_s_key", "app_s_key"}
        elif "app_key" in given:
            wanted = {"app_key"}
            if self.dev_eui is None:
                raise ValueError("OTAA needs dev_eui with app_key")
        elif self.dev_eui is None:
            raise ValueError("give dev_addr with session keys (ABP), dev_eui with app_key "
                             "(OTAA), or dev_eui alone (ChirpStack)")
        else:
            wanted = set()
        extra = sorted(given - wanted)
        if extra:
            shape = "ABP (dev_addr)" if self.dev_addr else "OTAA" if wanted else "ChirpStack"
            raise ValueError(f"{', '.join(extra)} does not belong to a {shape} device")
        if self.app_eui is not None and wanted != {"app_key"}:
            raise ValueError("app_eui belongs to an OTAA device (dev_eui + app_key)")
        for name in sorted(wanted):
            inline, env = pairs[name]
            if (inline is None) == (env is None):
                raise ValueError(f"give exactly one of {name} and {name}_env")
            if inline is not None:
                _hex_key(inline.get_secret_value(), name)
        return self

    @property
    def abp(self) -> bool:
        return self.dev_addr is not None

    @property
    def otaa(self) -> bool:
        return self.app_key is not None or self.app_key_env is not None

    def _key(self, name: str) -> bytes:
        inline: SecretStr | None = getattr(self, name)
        if inline is not None:
            return _hex_key(inline.get_secret_value(), name)
        env: str = getattr(self, f"{name}_env")
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{name}_env names {env!r}, which is not set")
        try:
            return _hex_key(value.strip(), f"${env}")
        except ValueError as err:
            raise ConfigError(str(err)) from err

    def session_keys(self) -> tuple[bytes, bytes]:
        """ABP (NwkSKey, AppSKey), reading environment variables now; raise ConfigError."""
        return self._key("nwk_s_key"), self._key("app_s_key")

    def root_key(self) -> bytes:
        """The OTAA AppKey, reading an environment variable now; raise ConfigError."""
        return self._key("app_key")


class SemtechUdpConfig(_Frozen):
    """A UDP port that LoRa gateways' Semtech packet forwarders push to."""

    kind: Literal["semtech_udp"]
    host: str = Field("127.0.0.1", description="listen address (0.0.0.0 for gateways on "
                      "the LAN)")
    port: int = Field(1700, ge=1, le=65535, description="the packet forwarder's serv_port_up "
                      "and serv_port_down")
    dedup_window_ms: int = Field(200, ge=0, le=10_000, description="copies of one frame from "
                                 "several gateways within this window are one uplink")
    max_datagram_bytes: int = Field(8192, ge=64, le=65507, description="longer datagrams are "
                                    "rejected unread")
    max_fcnt_gap: int = Field(16384, ge=1, le=32768, description="largest accepted jump of the "
                              "frame counter (LoRaWAN 1.0.x MAX_FCNT_GAP)")
    state_path: Path | None = Field(None, description="SQLite file keeping frame counters "
                                    "and OTAA sessions across restarts (null: "
                                    "lorawan-state.sqlite beside the edge buffer)")
    use_gateway_time: bool = Field(True, description="stamp readings with the gateway's "
                                   "reception time when it has one")
    max_clock_skew_s: float = Field(300.0, gt=0, description="a gateway time further than "
                                    "this from the agent's clock is ignored")
    gateways: tuple[str, ...] = Field((), description="gateway EUIs allowed to push (16 hex "
                                      "digits); empty: any")
    region: Literal["CN470", "EU868"] = Field("CN470", description="regional parameters of "
                                              "OTAA join-accepts (RX1 frequency, power)")
    net_id: str = Field("000000", pattern=r"^[0-9A-Fa-f]{6}$", description="NetID sent in "
                        "join-accepts; its low 7 bits prefix the DevAddrs given out")

    @model_validator(mode="after")
    def _gateway_euis(self) -> SemtechUdpConfig:
        for eui in self.gateways:
            if len(eui) != 16 or any(c not in "0123456789abcdefABCDEF" for c in eui):
                raise ValueError(f"gateway EUI {eui!r} is not 16 hex digits")
        return self
