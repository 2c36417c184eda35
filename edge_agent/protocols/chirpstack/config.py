"""Settings of the `chirpstack_mqtt` listener entry (gateway config `listeners:`)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.errors import ConfigError


class ChirpstackMqttConfig(BaseModel):
    """Subscribes to a ChirpStack v4 MQTT integration's uplink events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["chirpstack_mqtt"]
    host: str = Field("127.0.0.1", description="the broker ChirpStack publishes to")
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the "
                                     "password (never logged)")
    client_id: str | None = Field(None, description="null: a random id and a clean session; "
                                  "set a stable id to have the broker queue uplinks (QoS 1) "
                                  "while the agent is down")
    topic: str = Field("application/+/device/+/event/up", description="subscription; "
                       "narrow it to one application id where the broker is shared")
    qos: int = Field(1, ge=0, le=2)
    keepalive_s: int = Field(30, ge=5, le=3600)
    reconnect_max_s: float = Field(30.0, gt=0, description="reconnect backoff grows from 1 s "
                                   "to this")
    use_gateway_time: bool = Field(True, description="stamp readings with the gateways' "
                                   "reception time (rxInfo gwTime) when it agrees with "
                                   "ChirpStack's clock; else ChirpStack's event time")
    max_clock_skew_s: float = Field(300.0, gt=0, description="largest accepted difference "
                                    "between gateway and ChirpStack time")

    def password(self) -> str | None:
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(f"password_env names {self.password_env!r}, which is not set")
        return value
