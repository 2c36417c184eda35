"""The reading history interlocks use: last values, starts and stops, bounded, order-safe."""

from __future__ import annotations

from edge_agent.commands.history import HOUR_MS, DeviceHistory

T0 = 1_764_060_000_000


def test_last_value_and_time_per_point_and_late_readings_are_ignored() -> None:
    h = DeviceHistory("d")
    h.observe(T0, {"level": 1.5, "running": False})
    h.observe(T0 + 5000, {"level": 1.7})
    h.observe(T0 + 2000, {"level": 9.9, "running": True})  # a late batch
    assert h.reading("level") == (1.7, T0 + 5000)  # older than the level known: ignored
    assert h.reading("running") == (True, T0 + 2000)  # newer than the run state known: taken
    h.observe(T0 + 1000, {"running": False})  # older again: no stop
    assert h.reading("running") == (True, T0 + 2000) and h.last_stop("running") is None
    assert h.starts("running", 0) == [T0 + 2000]
    assert h.reading("flow") is None and h.watched_since("flow") is None
    assert h.watched_since("level") == T0


def test_starts_and_stops_are_stamped_by_the_first_reading_showing_them() -> None:
    h = DeviceHistory("d")
    h.observe(T0, {"running": True})  # already running: when it began is unknown
    assert h.last_start("running") is None
    h.observe(T0 + 5000, {"running": False})
    h.observe(T0 + 10_000, {"running": False})
    h.observe(T0 + 15_000, {"running": True})
    assert h.last_stop("running") == T0 + 5000 and h.last_start("running") == T0 + 15_000
    assert h.stops("running", T0) == [T0 + 5000] and h.starts("running", T0) == [T0 + 15_000]


def test_starts_are_kept_for_an_hour_and_bounded_in_number() -> None:
    h = DeviceHistory("d", max_events=3)
    for i in range(10):
        h.observe(T0 + i * 1000, {"running": i % 2 == 1})  # starts at 1, 3, 5, 7, 9 s
    assert h.starts("running", 0) == [T0 + 5000, T0 + 7000, T0 + 9000]
    h.observe(T0 + 9000 + HOUR_MS, {"running": False})
    assert h.starts("running", 0) == [] and h.stops("running", 0) == [T0 + 9000 + HOUR_MS]
    assert h.last_start("running") == T0 + 9000  # the last start is kept beyond the window


def test_a_commanded_start_is_one_start_with_the_edge_seen_after_it() -> None:
    h = DeviceHistory("d", match_window_ms=30_000)
    h.record_start("running", T0)  # before the first poll of the point
    assert h.reading("running") is None and h.starts("running", 0) == [T0]
    h.observe(T0 + 2000, {"running": False})  # not running yet
    h.observe(T0 + 4000, {"running": True})  # the commanded start shows
    assert h.starts("running", 0) == [T0] and h.watched_since("running") == T0 + 2000
    h.observe(T0 + 60_000, {"running": False})
    h.record_start("running", T0 + 100_000)  # commanded, but the pump never started
    h.observe(T0 + 200_000, {"running": True})  # an unrelated start, after the match window
    assert h.starts("running", 0) == [T0, T0 + 100_000, T0 + 200_000]
    assert h.last_start("running") == T0 + 200_000
