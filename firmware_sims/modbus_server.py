"""Modbus TCP servers of the simulators: one pymodbus server per port, many unit ids.

Like a Modbus TCP gateway in front of an RS-485 bus, one endpoint hosts many unit ids. Each
unit's four tables are sized to cover every address its profile uses; after each physics step
`SimUnit.publish()` writes every point's value with to_raw + encode_point (a bool that is a bit
of a holding/input register is merged into the current word, so its neighbours survive).

Addressing: pymodbus 3.11's ModbusDeviceContext adds 1 to every protocol address before it
reaches the data block. The simulator reads and writes its own registers through the same
context methods as clients do, so address N in the profile is address N on the wire whatever
that offset is; blocks start at 0 with one spare slot, so either convention is covered.

A muted unit gets no answer at all (the server context raises NoSuchIdException for it and the
server runs with ignore_missing_devices=True), so its client times out while other units on
the same port keep answering. Clients may write only to read_write points (others get
exception 02, illegal data address); the written value is handed to the device model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pymodbus.constants import ExcCodes
from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

from device_profiles.schema import Access, Profile, RegisterType
from edge_agent.protocols.modbus.codec import decode_point, encode_point
from edge_agent.scaling import to_engineering, to_raw
from firmware_sims.device import DeviceModel
from firmware_sims.errors import ListenError

READ_FUNCTION: Mapping[RegisterType, int] = {
    RegisterType.coil: 1, RegisterType.discrete_input: 2,
    RegisterType.holding: 3, RegisterType.input: 4,
}
_STORE_TABLE: Mapping[str, RegisterType] = {
    "c": RegisterType.coil, "d": RegisterType.discrete_input,
    "h": RegisterType.holding, "i": RegisterType.input,
}
_BIT_TABLES = frozenset({RegisterType.coil, RegisterType.discrete_input})

WriteHandler = Callable[[RegisterType, int, int], None]


def table_sizes(profile: Profile) -> dict[RegisterType, int]:
    """Registers (or bits) each table needs: one past the highest address the profile uses."""
    sizes = dict.fromkeys(RegisterType, 1)
    for p in profile.points:
        sizes[p.register_type] = max(sizes[p.register_type], p.address + p.words)
    return sizes


def _block(table: RegisterType, size: int) -> ModbusSequentialDataBlock:
    zero: bool | int = False if table in _BIT_TABLES else 0
    return ModbusSequentialDataBlock(0, [zero] * (size + 1))


class UnitContext(ModbusDeviceContext):
    """The four tables of one unit; client writes reach only read_write points."""

    def __init__(self, profile: Profile, on_write: WriteHandler) -> None:
        sizes = table_sizes(profile)
        super().__init__(
            co=_block(RegisterType.coil, sizes[RegisterType.coil]),
            di=_block(RegisterType.discrete_input, sizes[RegisterType.discrete_input]),
            hr=_block(RegisterType.holding, sizes[RegisterType.holding]),
            ir=_block(RegisterType.input, sizes[RegisterType.input]),
        )
        self._on_write = on_write
        self._writable = {(p.register_type, a) for p in profile.points
                          if p.access == Access.read_write
                          for a in range(p.address, p.address + p.words)}

    def load(self, table: RegisterType, address: int, values: Sequence[int | bool]) -> None:
        """Simulator side: put values into the table at protocol address `address`."""
        rc = super().setValues(READ_FUNCTION[table], address, list(values))
        if rc is not None:
            raise IndexError(f"{table} {address}+{len(values)} is outside the unit's table")

    def read(self, table: RegisterType, address: int, count: int) -> list[int] | list[bool]:
        """Simulator side: what a client reads at protocol address `address`."""
        values = super().getValues(READ_FUNCTION[table], address, count)
        if isinstance(values, ExcCodes):
            raise IndexError(f"{table} {address}+{count} is outside the unit's table")
        return values

    def setValues(self, func_code: int, address: int,
                  values: list[int] | list[bool]) -> ExcCodes | None:
        """Client side: accept writes to read_write points only, then tell the unit."""
        table = _STORE_TABLE.get(self.decode(func_code))
        span = range(address, address + len(values))
        if table is None or any((table, a) not in self._writable for a in span):
            return ExcCodes.ILLEGAL_ADDRESS
        rc = super().setValues(func_code, address, values)
        if rc is None:
            self._on_write(table, address, len(values))
        return rc


class SimUnit:
    """One simulated device: its model, its registers and whether it answers."""

    def __init__(self, port: int, unit_id: int, model: DeviceModel, *,
                 bus: str | None = None) -> None:
        self.port = port
        self.unit_id = unit_id
        self.model = model
        self.bus = bus
        self.profile = model.profile
        self.muted = False
        self.context = UnitContext(model.profile, self._client_wrote)
        self._published: dict[str, object] = {}

    @property
    def key(self) -> str:
        """"<port>:<unit>" (Modbus TCP) or "<bus>:<unit>" (a named serial bus), how the control
        API names the device."""
        return f"{self.bus if self.bus is not None else self.port}:{self.unit_id}"

    def publish(self) -> None:
        """Write every point's current value into the registers (those that changed)."""
        values = self.model.values()
        for p in self.profile.points:
            value = values[p.name]
            if self._published.get(p.name, self) == value:
                continue
            self._published[p.name] = value
            raw = to_raw(p, value)
            current = 0
            if p.bit is not None:
                current = int(self.context.read(p.register_type, p.address, 1)[0])
            self.context.load(p.register_type, p.address, encode_point(p, raw, current))

    def _client_wrote(self, table: RegisterType, address: int, count: int) -> None:
        end = address + count
        for p in self.profile.points:
            if (p.register_type == table and p.access == Access.read_write
                    and p.address < end and address < p.address + p.words):
                words = self.context.read(table, p.address, p.words)
                self.model.write(p.name, to_engineering(p, decode_point(p, p.address, words)))


class SimServerContext(ModbusServerContext):
    """The units of one server; a muted or unknown unit id is "missing" (no answer)."""

    def __init__(self, units: Mapping[int, SimUnit]) -> None:
        super().__init__(devices={u: unit.context for u, unit in units.items()}, single=False)
        self._units = dict(units)

    def __getitem__(self, device_id: int) -> UnitContext:
        unit = self._units.get(device_id)
        if unit is None or unit.muted:
            raise NoSuchIdException(f"unit {device_id} is muted or not simulated")
        return unit.context


class ModbusSimServer:
    """One Modbus TCP endpoint serving the given units; `start()` listens, `stop()` closes."""

    def __init__(self, host: str, port: int, units: Mapping[int, SimUnit]) -> None:
        self.host = host
        self.port = port
        self.units = dict(units)
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        """Listen (returns once the port accepts connections); ListenError if it cannot."""
        server = ModbusTcpServer(SimServerContext(self.units), address=(self.host, self.port),
                                 ignore_missing_devices=True)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as err:
            raise ListenError(f"Modbus server cannot listen on {self.host}:{self.port} "
                              f"(port in use?)") from err
        self._server = server

    async def stop(self) -> None:
        """Close the listener and every client connection."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
