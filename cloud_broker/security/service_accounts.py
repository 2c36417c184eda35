"""Service accounts (ingest, event centre, operators, admins) kept in a small YAML file.

The file holds username, role and the mosquitto password hash, never a password::

    accounts:
      - {username: ingest, role: ingest, password_hash: "$7$101$...$..."}

`create_account` and `rotate_password` return the new plain password once, for the caller
to hand over; it is not logged and not stored. The file is written 0600, atomically.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cloud_broker.security.broker_files import Account, BrokerFilesError, Role, write_atomically
from cloud_broker.security.passwords import generate_password, hash_password


def load_service_accounts(path: Path) -> list[Account]:
    """The accounts in `path`; an empty list when the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return [Account(str(e["username"]), e.get("password_hash"), Role(e["role"]))
                for e in data.get("accounts", [])]
    except (KeyError, TypeError, ValueError) as err:
        raise BrokerFilesError(f"{path}: bad service account entry: {err}") from err


def save_service_accounts(path: Path, accounts: list[Account]) -> None:
    rows = [{"username": a.username, "role": str(a.role), "password_hash": a.password_hash}
            for a in sorted(accounts, key=lambda a: a.username)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(path, yaml.safe_dump({"accounts": rows}, sort_keys=False))


def create_account(path: Path, username: str, role: Role | str) -> str:
    """Add a service account with a generated password; return that password (shown once)."""
    role = Role(role)
    if role is Role.GATEWAY:
        raise BrokerFilesError("gateways live in the registry, not in the service accounts")
    accounts = load_service_accounts(path)
    if any(a.username == username for a in accounts):
        raise BrokerFilesError(f"service account {username!r} already exists")
    password = generate_password()
    save_service_accounts(path, [*accounts, Account(username, hash_password(password), role)])
    return password


def rotate_password(path: Path, username: str) -> str:
    """Give `username` a new generated password; return it. The old one stops working at the
    next broker-file regeneration and reload."""
    accounts = load_service_accounts(path)
    if not any(a.username == username for a in accounts):
        raise BrokerFilesError(f"no service account {username!r}")
    password = generate_password()
    updated = [Account(a.username, hash_password(password), a.role)
               if a.username == username else a for a in accounts]
    save_service_accounts(path, updated)
    return password


def remove_account(path: Path, username: str) -> None:
    accounts = load_service_accounts(path)
    remaining = [a for a in accounts if a.username != username]
    if len(remaining) == len(accounts):
        raise BrokerFilesError(f"no service account {username!r}")
    save_service_accounts(path, remaining)
