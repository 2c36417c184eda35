"""Protocol sections of a profile: how a device model is spoken to, one class per `kind`.

Each protocol's points are addressed one way (`ADDRESSING`): Modbus by register, the
frame-based Chinese standards by a named decoded field (the class lists the fields its codec
decodes), LoRaWAN by a position in the decrypted payload. Instance parameters (addresses,
serial ports, keys) are not here: they belong to the gateway config.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModbusTcpProtocol(_Frozen):
    kind: Literal["modbus_tcp"]
    max_registers_per_read: int = Field(125, ge=1, le=125, description="FC3/FC4 read limit")
    max_bits_per_read: int = Field(2000, ge=1, le=2000, description="FC1/FC2 read limit")
    max_gap_registers: int = Field(
        0, ge=0, le=64, description="unused registers a merged read may span")
    timeout_s: float = Field(1.0, gt=0, le=30, description="answer timeout per request")


class ModbusRtuProtocol(_Frozen):
    """Modbus RTU on an RS-485 bus: the serial port and baud rate are the instance's."""

    kind: Literal["modbus_rtu"]
    max_registers_per_read: int = Field(125, ge=1, le=125, description="FC3/FC4 read limit")
    max_bits_per_read: int = Field(2000, ge=1, le=2000, description="FC1/FC2 read limit")
    max_gap_registers: int = Field(
        0, ge=0, le=64, description="unused registers a merged read may span")
    timeout_s: float = Field(0.5, gt=0, le=30, description="answer timeout per request")


class Cjt188Protocol(_Frozen):
    """CJ/T 188 meter (water/heat/gas) on RS-485 or M-Bus, read on request with the metering
    data item 901F. Volumes decode to m³ and heat to kWh whatever unit code the meter sends;
    `meter_time` is the meter's clock in epoch seconds, `status` the two ST bytes (ST0 + 256 ×
    ST1). Serial port, baud rate and meter address are the instance's `params`."""

    kind: Literal["cjt188"]
    meter_type: int = Field(0x10, ge=0, le=0xFF, description="T byte: 0x10 cold water, "
                            "0x11 hot water, 0x20 heat, 0x30 gas")
    timeout_s: float = Field(1.0, gt=0, le=30, description="answer timeout per request")
    swap_di: bool = Field(False, description="send the data identifier as 1F 90 instead of "
                          "90 1F (some meters accept only one order; answers in either are read)")
    preamble_bytes: int = Field(2, ge=0, le=8, description="FE wake-up bytes sent before each "
                                "request")
    check_ser: bool = Field(True, description="reject answers whose SER is not the request's "
                            "(late answers to an earlier request); off for meters that do not "
                            "echo SER")
    fields: ClassVar[frozenset[str]] = frozenset({
        "cumulative_flow", "settlement_flow", "meter_time", "valve_open", "valve_abnormal",
        "battery_low", "status", "current_heat", "settlement_heat"})


class Gbt26875Protocol(_Frozen):
    """A building fire-system component reported by a user information transmission device
    (用户信息传输装置) over GB/T 26875.3; the device pushes, the agent listens.
    State fields are the bits of the component state word (`power_fault` is bit 8) or, for a
    device that is a whole system, of the system state word (`main_power_fault` ...
    `reset`); `state` is the raw word. `analog_value` is a component's analog value of any
    type; `analog_<quantity>` only that analog type (e.g. `analog_pressure_kpa`, 0.1 kPa)."""

    kind: Literal["gbt26875"]
    fields: ClassVar[frozenset[str]] = frozenset({
        "normal", "fire_alarm", "fault", "shielded", "supervisory", "started", "feedback",
        "delayed", "power_fault", "main_power_fault", "backup_power_fault", "bus_fault",
        "manual", "config_changed", "reset", "state", "analog_value", "analog_event_count",
        "analog_height", "analog_temperature", "analog_pressure_mpa", "analog_pressure_kpa",
        "analog_gas_concentration", "analog_time", "analog_voltage", "analog_current",
        "analog_flow", "analog_air_volume", "analog_wind_speed"})


class LorawanProtocol(_Frozen):
    """A LoRaWAN 1.0.x end device; its uplink FRMPayload is decoded by the points' byte layout."""

    kind: Literal["lorawan"]
    fport: int = Field(2, ge=1, le=223, description="FPort of the uplinks that carry readings")
    payload_bytes: int | None = Field(None, ge=1, le=242, description="expected payload length "
                                      "(None: any length that covers the points)")


Protocol = Annotated[ModbusTcpProtocol | ModbusRtuProtocol | Cjt188Protocol | Gbt26875Protocol
                     | LorawanProtocol, Field(discriminator="kind")]

# Which addressing each protocol's points use: Modbus registers, a named decoded field, or a
# position in a binary payload.
ADDRESSING: dict[str, str] = {"modbus_tcp": "register", "modbus_rtu": "register",
                              "cjt188": "field", "gbt26875": "field", "lorawan": "payload"}
