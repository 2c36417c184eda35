"""Base class for a real server process (mosquitto, influxd) started and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from dciot.runtime.ports import port_is_bindable

FALLBACK_DIRS = ("/usr/sbin", "/usr/bin")
TAIL_LINES = 20


class MissingBinaryError(RuntimeError):
    """A server binary is not installed."""

    def __init__(self, binary: str, package: str) -> None:
        self.binary = binary
        self.package = package
        super().__init__(
            f"'{binary}' was not found on PATH or in {', '.join(FALLBACK_DIRS)}. "
            f"Install it on Debian/Ubuntu with `sudo apt-get install -y {package}`, "
            f"or run `make demo`, which installs it.")


class StartupError(RuntimeError):
    """A server exited during start-up or was not ready before the deadline."""


def find_binary(binary: str, package: str) -> str:
    """Full path of `binary`: PATH first, then /usr/sbin and /usr/bin (often not on PATH)."""
    if os.sep in binary:
        if os.access(binary, os.X_OK):
            return binary
        raise MissingBinaryError(binary, package)
    found = shutil.which(binary)
    if found:
        return found
    for directory in FALLBACK_DIRS:
        candidate = os.path.join(directory, binary)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise MissingBinaryError(binary, package)


def tail_file(path: Path, lines: int = TAIL_LINES) -> str:
    """Last `lines` lines of a text file, or "" if it cannot be read."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ManagedProcess:
    """One server process with its output in a log file under `run_dir`.

    Subclasses set `name`, `binary`, `apt_package`, and implement `_command()`,
    `_ports()` and `_is_ready()`; `_prepare()` writes their config. The process runs in its
    own session so a Ctrl-C in the terminal reaches only our code, which then stops it.
    `stop()` then `start()` again reuses the same ports and data.
    """

    name: str = "process"
    binary: str = "true"
    apt_package: str = ""
    log_filename: str = "process.log"
    poll_interval_s: float = 0.05

    def __init__(self, run_dir: Path, binary: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        if binary is not None:
            self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None

    # -- for subclasses -------------------------------------------------------------------

    def _command(self, executable: str) -> list[str]:
        raise NotImplementedError

    def _ports(self) -> list[tuple[str, int]]:
        """(host, port) pairs the server listens on; checked to be free before spawning."""
        return []

    def _prepare(self) -> None:
        """Write config files; called by start() before spawning."""

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _diagnostic_logs(self) -> list[Path]:
        """Logs whose tails go into a StartupError."""
        return [self.log_path]

    # -- public ---------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        """File receiving the process's stdout and stderr (appended across restarts)."""
        return self.run_dir / self.log_filename

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Spawn the server and return once it is ready; StartupError if it is not."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        executable = find_binary(self.binary, self.apt_package)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for host, port in self._ports():
            # A server that cannot bind exits, but our readiness probe could first reach
            # whatever holds the port (e.g. a previous instance not yet gone).
            if not port_is_bindable(host, port):
                raise StartupError(f"{self.name}: {host}:{port} is already in use")
        self._prepare()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command(executable), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.run_dir, start_new_session=True)
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            proc = self._proc
            assert proc is not None
            code = proc.poll()
            if code is not None:
                raise StartupError(
                    f"{self.name} exited during start-up with code {code}{self._tails()}")
            if self._is_ready():
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise StartupError(f"{self.name} (pid {proc.pid}) was not ready after "
                                   f"{timeout_s} s{self._tails()}")
            time.sleep(self.poll_interval_s)

    def _tails(self) -> str:
        parts = []
        for path in self._diagnostic_logs():
            text = tail_file(path)
            if text:
                parts.append(f"\n--- last lines of {path} ---\n{text}")
        return "".join(parts) if parts else f"\n(no output in {self.log_path})"

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the recorded PID, wait up to timeout_s, then SIGKILL; return the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                return self.kill()
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the recorded PID right away (crash simulation); return the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        return proc.returncode

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {state} run_dir={self.run_dir}>"
