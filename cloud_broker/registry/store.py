"""The provisioning registry: gateways and device instances in one SQLite file.

Persistence only: what a valid entry is lives in `validation.py`, credential handling in
`provisioning.py`. Ids are unique across the file (SQLite primary keys); a device keeps its row
when decommissioned or moved, so its history of owner gateway is not kept (see README.md).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cloud_broker.registry.errors import AlreadyExists, NotFound, RegistryError

GatewayStatus = Literal["active", "revoked"]
DeviceStatus = Literal["active", "decommissioned"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    id            TEXT PRIMARY KEY,
    site          TEXT NOT NULL,
    town          TEXT NOT NULL,
    lat           REAL NOT NULL,
    lon           REAL NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    password_hash TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    profile       TEXT NOT NULL,
    gateway       TEXT NOT NULL REFERENCES gateways(id),
    host          TEXT,
    port          INTEGER,
    unit          INTEGER,
    params        TEXT NOT NULL DEFAULT '{}',
    lat           REAL NOT NULL,
    lon           REAL NOT NULL,
    install_date  TEXT,
    status        TEXT NOT NULL CHECK (status IN ('active', 'decommissioned')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_gateway ON devices (gateway);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Gateway:
    id: str
    site: str
    town: str
    lat: float
    lon: float
    status: GatewayStatus = "active"
    password_hash: str | None = None
    created_at: str = ""
    updated_at: str = ""

    def public(self) -> dict[str, Any]:
        """Everything but the hash (for --json output): only whether one is set."""
        data = asdict(self)
        data["has_password"] = data.pop("password_hash") is not None
        return data


@dataclass(frozen=True)
class Device:
    """A device instance. modbus_tcp devices give host/port/unit; other protocols `params`."""

    id: str
    name: str
    profile: str
    gateway: str
    lat: float
    lon: float
    host: str | None = None
    port: int | None = None
    unit: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    install_date: str | None = None
    status: DeviceStatus = "active"
    created_at: str = ""
    updated_at: str = ""

    def transport(self) -> dict[str, Any]:
        """The gateway-config keys of the transport: host/port/unit or params."""
        if self.host is not None or self.port is not None or self.unit is not None:
            return {"host": self.host, "port": self.port, "unit": self.unit}
        return {"params": dict(self.params)}


class Registry:
    """Gateways and devices in a SQLite file. `open()` creates the schema when missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Registry:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RegistryError(f"registry {self.path} is not open")
        return self._db

    # gateways -------------------------------------------------------------------------------

    def add_gateway(self, gateway: Gateway) -> Gateway:
        now = _now()
        row = replace(gateway, created_at=now, updated_at=now)
        try:
            with self.db:
                self.db.execute(
                    "INSERT INTO gateways VALUES (:id, :site, :town, :lat, :lon, :status, "
                    ":password_hash, :created_at, :updated_at)", asdict(row))
        except sqlite3.IntegrityError as err:
            raise AlreadyExists(f"gateway {gateway.id!r} already exists") from err
        return row

    def get_gateway(self, gateway_id: str) -> Gateway:
        row = self.db.execute("SELECT * FROM gateways WHERE id = ?", (gateway_id,)).fetchone()
        if row is None:
            raise NotFound(f"no gateway {gateway_id!r}")
        return Gateway(**dict(row))

    def list_gateways(self, status: GatewayStatus | None = None) -> list[Gateway]:
        rows = self.db.execute("SELECT * FROM gateways WHERE ? IS NULL OR status = ? "
                               "ORDER BY id", (status, status)).fetchall()
        return [Gateway(**dict(r)) for r in rows]

    def set_gateway_password_hash(self, gateway_id: str, password_hash: str | None) -> None:
        self._update("gateways", gateway_id, {"password_hash": password_hash})

    def revoke_gateway(self, gateway_id: str) -> None:
        """Status revoked and the password hash cleared: the broker no longer admits it."""
        self._update("gateways", gateway_id, {"status": "revoked", "password_hash": None})

    # devices --------------------------------------------------------------------------------

    def add_device(self, device: Device) -> Device:
        (added,) = self.add_devices([device])
        return added

    def add_devices(self, devices: Iterable[Device]) -> list[Device]:
        """Add all devices in one transaction: all or none."""
        now = _now()
        rows = [replace(d, created_at=now, updated_at=now) for d in devices]
        try:
            with self.db:
                self.db.executemany(
                    "INSERT INTO devices VALUES (:id, :name, :profile, :gateway, :host, :port, "
                    ":unit, :params, :lat, :lon, :install_date, :status, :created_at, "
                    ":updated_at)", [_device_row(r) for r in rows])
        except sqlite3.IntegrityError as err:
            raise AlreadyExists(f"cannot add devices: {err}") from err
        return rows

    def get_device(self, device_id: str) -> Device:
        row = self.db.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
        if row is None:
            raise NotFound(f"no device {device_id!r}")
        return _device(row)

    def list_devices(self, gateway: str | None = None,
                     status: DeviceStatus | None = None) -> list[Device]:
        rows = self.db.execute(
            "SELECT * FROM devices WHERE (? IS NULL OR gateway = ?) AND (? IS NULL OR status = ?) "
            "ORDER BY id", (gateway, gateway, status, status)).fetchall()
        return [_device(r) for r in rows]

    def device_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM devices")}

    def update_device(self, device: Device) -> Device:
        """Replace every field but id, status and created_at with those of `device`."""
        current = self.get_device(device.id)
        changed = replace(device, status=current.status, created_at=current.created_at)
        row = _device_row(changed)
        fields = {k: row[k] for k in ("name", "profile", "gateway", "host", "port", "unit",
                                      "params", "lat", "lon", "install_date")}
        self._update("devices", device.id, fields)
        return self.get_device(device.id)

    def move_device(self, device_id: str, gateway_id: str) -> None:
        self.get_gateway(gateway_id)
        self._update("devices", device_id, {"gateway": gateway_id})

    def decommission_device(self, device_id: str) -> None:
        self._update("devices", device_id, {"status": "decommissioned"})

    # ----------------------------------------------------------------------------------------

    def _update(self, table: str, row_id: str, fields: dict[str, Any]) -> None:
        assert table in ("gateways", "devices")
        assign = ", ".join(f"{k} = :{k}" for k in fields)
        with self.db:
            cursor = self.db.execute(
                f"UPDATE {table} SET {assign}, updated_at = :updated_at "
                "WHERE id = :row_id", {**fields, "updated_at": _now(), "row_id": row_id})
        if cursor.rowcount == 0:
            raise NotFound(f"no {table[:-1]} {row_id!r}")


def _device_row(device: Device) -> dict[str, Any]:
    row = asdict(device)
    row["params"] = json.dumps(device.params, ensure_ascii=False, sort_keys=True)
    return row


def _device(row: sqlite3.Row) -> Device:
    data = dict(row)
    data["params"] = json.loads(data["params"])
    return Device(**data)
