"""One uplink heard by several gateways is one uplink. No I/O; the caller supplies the clock.

Every gateway in range forwards the same frame, each with its own RSSI/SNR and timestamp. The
first copy opens a window (`window_ms`, 200 ms like ChirpStack's default deduplication delay);
copies with the same (DevAddr, FCnt, MIC) that arrive inside it are merged into that uplink,
which the caller processes once when the window closes (`pop_due`). The window is keyed on
the MIC too, so a different frame that reuses a DevAddr and counter is not swallowed.

A copy that arrives after its window closed is a new uplink to the caller; the frame-counter
check then rejects it as a `retransmission`. Raise `window_ms` if a gateway's backhaul is
slower than the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

Key = tuple[int, int, bytes]  # DevAddr, 16-bit FCnt, MIC (join: DevEUI, DevNonce, MIC)


@dataclass(frozen=True)
class Reception:
    """One gateway's copy: who heard it, how well and when (epoch ms, None: no time source),
    and what a downlink answer through that gateway needs (its µs counter, the frequency and
    data rate of the uplink)."""

    gateway: str
    rssi: int | None = None
    snr: float | None = None
    time_ms: int | None = None
    tmst: int | None = None
    freq: float | None = None
    datr: str | int | None = None

    def quality(self) -> tuple[float, float]:
        return (self.rssi if self.rssi is not None else -1e9,
                self.snr if self.snr is not None else -1e9)


@dataclass
class Uplink(Generic[T]):
    """A frame with every reception of it seen inside the window."""

    key: Key
    item: T
    opened_ms: int
    receptions: list[Reception] = field(default_factory=list)

    @property
    def best(self) -> Reception:
        """The reception with the highest RSSI (then SNR)."""
        return max(self.receptions, key=Reception.quality)

    @property
    def time_ms(self) -> int | None:
        """The earliest gateway reception time, if any gateway has a time source."""
        times = [r.time_ms for r in self.receptions if r.time_ms is not None]
        return min(times) if times else None

    @property
    def gateways(self) -> list[str]:
        return sorted({r.gateway for r in self.receptions})


class Deduplicator(Generic[T]):
    """Collects copies of the same frame for `window_ms` after the first one."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._open: dict[Key, Uplink[T]] = {}

    def offer(self, key: Key, item: T, reception: Reception, now_ms: int) -> bool:
        """Add one copy; True when it is the first (the caller closes the window later)."""
        uplink = self._open.get(key)
        if uplink is not None:
            uplink.receptions.append(reception)
            return False
        self._open[key] = Uplink(key, item, now_ms, [reception])
        return True

    def pop(self, key: Key) -> Uplink[T] | None:
        """Close one window now and return its uplink."""
        return self._open.pop(key, None)

    def pop_due(self, now_ms: int) -> list[Uplink[T]]:
        """Close and return every window older than `window_ms`, oldest first."""
        due = [u for u in self._open.values() if now_ms - u.opened_ms >= self.window_ms]
        for uplink in due:
            del self._open[uplink.key]
        return sorted(due, key=lambda u: u.opened_ms)

    def __len__(self) -> int:
        return len(self._open)
