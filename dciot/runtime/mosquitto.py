"""A real mosquitto broker on a loopback port with its persistence in a run dir."""

from __future__ import annotations

import os
from pathlib import Path

from dciot.runtime.ports import can_connect, free_port
from dciot.runtime.process import ManagedProcess


class MosquittoServer(ManagedProcess):
    """`mosquitto -c RUN_DIR/mosquitto.conf`, anonymous, persistent, on host:port.

    The port is chosen once, in the constructor, so a restart after `stop()`/`kill()`
    listens on the same port and reloads `mosquitto.db` from the same run dir.
    """

    name = "mosquitto"
    binary = "mosquitto"
    apt_package = "mosquitto"
    log_filename = "mosquitto.stdout.log"

    def __init__(self, run_dir: Path, port: int | None = None, host: str = "127.0.0.1",
                 extra_config: list[str] | None = None, binary: str | None = None) -> None:
        super().__init__(run_dir, binary=binary)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.extra_config = list(extra_config or [])

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
            "allow_anonymous true",
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
        lines.extend(self.extra_config)
        return "\n".join(lines) + "\n"

    def _prepare(self) -> None:
        self.config_path.write_text(self.config_text(), encoding="utf-8")

    def _command(self, executable: str) -> list[str]:
        return [executable, "-c", str(self.config_path.resolve())]

    def _ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]

    def _is_ready(self) -> bool:
        return can_connect(self.host, self.port)

    def _diagnostic_logs(self) -> list[Path]:
        return [self.log_path, self.broker_log_path]

    def start(self, timeout_s: float = 10.0) -> None:
        """Write mosquitto.conf, spawn the broker, return once host:port accepts TCP."""
        super().start(timeout_s)
