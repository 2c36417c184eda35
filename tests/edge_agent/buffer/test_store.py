"""The disk buffer: durable across reopen, bounded by size and age, drops counted."""

from __future__ import annotations

from pathlib import Path

from edge_agent.buffer.store import ReadingStore
from edge_agent.uplink.contract import Reading

NOW = 1_764_000_000_000


def _store(tmp_path: Path, max_bytes: int = 10**9, max_age_s: float = 3600) -> ReadingStore:
    store = ReadingStore(tmp_path / "b.sqlite", max_bytes, max_age_s)
    store.open()
    return store


def _items(n: int, start_ts: int = NOW) -> list[tuple[str, str, Reading]]:
    return [(f"d{i % 3}", "p", Reading(start_ts + i, {"level": i * 0.5, "on": i % 2 == 0}))
            for i in range(n)]


def test_readings_survive_reopen_in_order_with_values(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ids = store.append(_items(5))
    store.close()  # as after a crash: nothing but the file remains
    again = _store(tmp_path)
    rows = again.oldest(10, exclude=set())
    assert [r.id for r in rows] == ids
    assert rows[2].device == "d2" and rows[2].reading == Reading(NOW + 2, {"level": 1.0,
                                                                           "on": True})
    assert again.stats().readings == 5 and again.readings_recorded() == 5


def test_delete_and_ids_are_never_reused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ids = store.append(_items(3))
    store.delete(ids)
    assert store.stats().readings == 0 and store.stats().bytes == 0
    (new,) = store.append(_items(1))
    assert new > max(ids)
    assert store.readings_recorded() == 4


def test_oldest_skips_in_flight(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ids = store.append(_items(6))
    rows = store.oldest(3, exclude={ids[0], ids[2]})
    assert [r.id for r in rows] == [ids[1], ids[3], ids[4]]


def test_size_bound_drops_oldest_not_in_flight_and_counts(tmp_path: Path) -> None:
    store = _store(tmp_path, max_bytes=1024)
    ids = store.append(_items(40))
    assert store.stats().bytes > 1024
    dropped = store.enforce_bounds(in_flight={ids[0]}, now_ms=NOW)
    assert dropped["size"] > 0 and dropped["age"] == 0
    assert store.stats().bytes <= 1024
    remaining = [r.id for r in store.oldest(100, exclude=set())]
    assert remaining[0] == ids[0]  # in flight: kept
    assert remaining[1:] == ids[1 + dropped["size"]:]  # the oldest others went first
    assert store.stats().readings + dropped["size"] == 40
    store.close()
    assert _store(tmp_path, max_bytes=1024).dropped_totals() == {"age": 0,
                                                                 "size": dropped["size"]}


def test_age_bound(tmp_path: Path) -> None:
    store = _store(tmp_path, max_age_s=60)
    store.append(_items(3, start_ts=NOW - 120_000))
    store.append(_items(2, start_ts=NOW))
    assert store.enforce_bounds(set(), now_ms=NOW) == {"age": 3, "size": 0}
    assert store.stats().readings == 2
