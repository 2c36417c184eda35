"""Modbus TCP transport: moves register reads and writes over one TCP connection. Content-blind.

One transport per (host, port): a Modbus TCP gateway in front of an RS-485 bus hosts many unit
ids behind one connection, so requests are strictly one at a time (`lock`). pymodbus is used only
here; its own retries are off so timeouts are reported to the caller at once.
"""

from __future__ import annotations

import asyncio
import logging

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse

from device_profiles.schema import RegisterType
from edge_agent.errors import DeviceException, DeviceTimeout, TransportError

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class ModbusTcpTransport:
    """Reads registers from unit ids behind one Modbus TCP endpoint."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | None = None

    @property
    def name(self) -> str:
        return f"modbus-tcp://{self.host}:{self.port}"

    async def _connected_client(self) -> AsyncModbusTcpClient:
        if self._client is None:
            self._client = AsyncModbusTcpClient(
                self.host, port=self.port, timeout=self.timeout_s, retries=0,
                reconnect_delay=0, name=self.name)
        if not self._client.connected:
            ok = await self._client.connect()
            if not ok:
                raise TransportError(f"{self.name}: connection refused or unreachable")
        return self._client

    async def read(self, table: RegisterType, start: int, count: int,
                   unit: int) -> list[int] | list[bool]:
        """Read `count` registers/bits of `table` from `start` on `unit`."""
        client = await self._connected_client()
        call = {
            RegisterType.coil: client.read_coils,
            RegisterType.discrete_input: client.read_discrete_inputs,
            RegisterType.holding: client.read_holding_registers,
            RegisterType.input: client.read_input_registers,
        }[table]
        where = f"{self.name} unit {unit} {table} {start}+{count}"
        try:
            response = await call(start, count=count, device_id=unit)
        except ModbusIOException as err:
            _reraise_cancellation(err)
            raise DeviceTimeout(f"{where}: no answer within {self.timeout_s} s") from err
        except (ConnectionException, ModbusException, OSError) as err:
            await self.close()
            raise TransportError(f"{where}: {err}") from err
        if isinstance(response, ExceptionResponse) or response.isError():
            code = getattr(response, "exception_code", 0)
            raise DeviceException(f"{where}: Modbus exception code {code}", code)
        if table in {RegisterType.coil, RegisterType.discrete_input}:
            return list(response.bits[:count])
        return list(response.registers)

    async def write(self, function_code: int, address: int, values: list[int] | list[bool],
                    unit: int) -> None:
        """Write with function code 5 (one coil), 15 (coils), 6 (one register) or 16
        (registers) from `address` on `unit` (the caller holds `lock`)."""
        client = await self._connected_client()
        where = f"{self.name} unit {unit} FC{function_code} {address}+{len(values)}"
        if function_code in {5, 6} and len(values) != 1:
            raise ValueError(f"{where}: function {function_code} writes exactly one value")
        try:
            if function_code == 5:
                response = await client.write_coil(address, bool(values[0]), device_id=unit)
            elif function_code == 15:
                response = await client.write_coils(address, [bool(v) for v in values],
                                                    device_id=unit)
            elif function_code == 6:
                response = await client.write_register(address, int(values[0]), device_id=unit)
            elif function_code == 16:
                response = await client.write_registers(address, [int(v) for v in values],
                                                        device_id=unit)
            else:
                raise ValueError(f"{where}: not a write function code")
        except ModbusIOException as err:
            _reraise_cancellation(err)
            raise DeviceTimeout(f"{where}: no answer within {self.timeout_s} s") from err
        except (ConnectionException, ModbusException, OSError) as err:
            await self.close()
            raise TransportError(f"{where}: {err}") from err
        if isinstance(response, ExceptionResponse) or response.isError():
            code = getattr(response, "exception_code", 0)
            raise DeviceException(f"{where}: Modbus exception code {code}", code)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _reraise_cancellation(err: Exception) -> None:
    """pymodbus turns the cancellation of a pending request into ModbusIOException ("Request
    cancelled outside pymodbus"); give the cancellation back, or a stopping agent would keep
    polling until it is killed."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError() from err
