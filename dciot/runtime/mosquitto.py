"""A real mosquitto broker on a loopback port with its persistence in a run dir."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from dciot.runtime.ports import can_connect, free_port
from dciot.runtime.process import ManagedProcess


@dataclass(frozen=True)
class TlsListener:
    """A second, TLS listener (on its own port; a free one when `port` is None).

    `require_certificate` makes clients present a certificate signed by `cafile`;
    `use_identity_as_username` then takes the certificate CN as the username, so the ACL
    file applies to it and no password is asked for on this listener.
    """

    cafile: Path
    certfile: Path
    keyfile: Path
    port: int | None = None
    require_certificate: bool = True
    use_identity_as_username: bool = True


class MosquittoServer(ManagedProcess):
    """`mosquitto -c RUN_DIR/mosquitto.conf`, persistent, on host:port.

    Anonymous by default. With `password_file` and/or `acl_file` it runs locked down
    (`allow_anonymous false`; deny-by-default ACLs), and `tls` adds a TLS listener on
    `tls_port`. `reload()` sends SIGHUP: mosquitto re-reads both files without a restart.

    The ports are chosen once, in the constructor, so a restart after `stop()`/`kill()`
    listens on the same ports and reloads `mosquitto.db` from the same run dir.
    """

    name = "mosquitto"
    binary = "mosquitto"
    apt_package = "mosquitto"
    log_filename = "mosquitto.stdout.log"

    def __init__(self, run_dir: Path, port: int | None = None, host: str = "127.0.0.1",
                 extra_config: list[str] | None = None, binary: str | None = None, *,
                 password_file: Path | None = None, acl_file: Path | None = None,
                 tls: TlsListener | None = None) -> None:
        super().__init__(run_dir, binary=binary)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.extra_config = list(extra_config or [])
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.tls_port: int | None = None
        if tls is not None:
            self.tls_port = tls.port if tls.port is not None else free_port(host)

    @property
    def locked_down(self) -> bool:
        """True when clients must authenticate (a password or ACL file is configured)."""
        return self.password_file is not None or self.acl_file is not None

    @property
    def config_path(self) -> Path:
        return self.run_dir / "mosquitto.conf"

    @property
    def broker_log_path(self) -> Path:
        """mosquitto's own log (connections, warnings); stdout/stderr go to `log_path`."""
        return self.run_dir / "mosquitto.log"

    def config_text(self) -> str:
        run_dir = self.run_dir.resolve()
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if self.locked_down else 'true'}",
            "persistence true",
            f"persistence_location {run_dir}/",
            "autosave_interval 1",
            "max_inflight_messages 1000",
            "max_queued_messages 200000",
            "max_queued_bytes 0",
            "set_tcp_nodelay true",
            f"log_dest file {self.broker_log_path.resolve()}",
            # One type per line: mosquitto 2.0 silently ignores all but the first word.
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto 2.0 switches to user `mosquitto`, which then cannot
            # write its log or mosquitto.db in a root-owned run dir. Stay root instead.
            lines.append("user root")
        if self.password_file is not None:
            lines.append(f"password_file {Path(self.password_file).resolve()}")
        if self.acl_file is not None:
            lines.append(f"acl_file {Path(self.acl_file).resolve()}")
        lines.extend(self.extra_config)
        lines.extend(self._tls_lines())
        return "\n".join(lines) + "\n"

    def _tls_lines(self) -> list[str]:
        """The TLS listener block; last, because listener options bind to the last listener."""
        if self.tls is None:
            return []
        tls = self.tls
        return [
            f"listener {self.tls_port} {self.host}",
            f"cafile {Path(tls.cafile).resolve()}",
            f"certfile {Path(tls.certfile).resolve()}",
            f"keyfile {Path(tls.keyfile).resolve()}",
            "tls_version tlsv1.2",
            f"require_certificate {'true' if tls.require_certificate else 'false'}",
            f"use_identity_as_username {'true' if tls.use_identity_as_username else 'false'}",
        ]

    def reload(self) -> None:
        """SIGHUP the broker: it re-reads mosquitto.conf, the password and the ACL file.

        Returns once the signal is sent; clients whose credentials are gone are disconnected
        by mosquitto itself. Wait for the effect (a refused login) rather than for time.
        """
        if self.pid is None or not self.running:
            raise RuntimeError("mosquitto is not running")
        os.kill(self.pid, signal.SIGHUP)

    def _prepare(self) -> None:
        self.config_path.write_text(self.config_text(), encoding="utf-8")

    def _command(self, executable: str) -> list[str]:
        return [executable, "-c", str(self.config_path.resolve())]

    def _ports(self) -> list[tuple[str, int]]:
        ports = [(self.host, self.port)]
        if self.tls_port is not None:
            ports.append((self.host, self.tls_port))
        return ports

    def _is_ready(self) -> bool:
        return all(can_connect(host, port) for host, port in self._ports())

    def _diagnostic_logs(self) -> list[Path]:
        return [self.log_path, self.broker_log_path]

    def start(self, timeout_s: float = 10.0) -> None:
        """Write mosquitto.conf, spawn the broker, return once host:port accepts TCP."""
        super().start(timeout_s)
