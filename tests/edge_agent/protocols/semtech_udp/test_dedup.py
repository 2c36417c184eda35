"""Copies of one frame from several gateways within the window are one uplink."""

from __future__ import annotations

from edge_agent.protocols.semtech_udp.dedup import Deduplicator, Reception

KEY = (0x26011BDA, 7, b"\x01\x02\x03\x04")


def test_copies_inside_the_window_merge_and_keep_the_best_signal() -> None:
    dedup: Deduplicator[str] = Deduplicator(window_ms=200)
    assert dedup.offer(KEY, "frame", Reception("gw-a", -90, 2.0, 1_000_050), now_ms=1000)
    assert not dedup.offer(KEY, "frame", Reception("gw-b", -60, 9.0, 1_000_020), now_ms=1050)
    assert not dedup.offer(KEY, "frame", Reception("gw-c", -60, 7.5, None), now_ms=1100)
    assert dedup.pop_due(now_ms=1199) == []
    (uplink,) = dedup.pop_due(now_ms=1200)
    assert uplink.item == "frame" and uplink.gateways == ["gw-a", "gw-b", "gw-c"]
    assert uplink.best.gateway == "gw-b"  # RSSI first, then SNR
    assert uplink.time_ms == 1_000_020  # the earliest gateway time
    assert len(dedup) == 0


def test_a_copy_after_the_window_is_a_new_uplink() -> None:
    dedup: Deduplicator[str] = Deduplicator(window_ms=200)
    dedup.offer(KEY, "frame", Reception("gw-a"), now_ms=0)
    assert dedup.pop(KEY) is not None
    assert dedup.offer(KEY, "frame", Reception("gw-b"), now_ms=500)


def test_different_mic_or_counter_is_a_different_uplink() -> None:
    dedup: Deduplicator[str] = Deduplicator(window_ms=200)
    assert dedup.offer(KEY, "a", Reception("gw-a"), now_ms=0)
    assert dedup.offer((KEY[0], KEY[1], b"\x09\x09\x09\x09"), "b", Reception("gw-a"), now_ms=1)
    assert dedup.offer((KEY[0], 8, KEY[2]), "c", Reception("gw-a"), now_ms=2)
    assert [u.item for u in dedup.pop_due(now_ms=1000)] == ["a", "b", "c"]


def test_no_signal_figures_rank_last_and_no_time_is_none() -> None:
    dedup: Deduplicator[str] = Deduplicator(window_ms=0)
    dedup.offer(KEY, "frame", Reception("gw-a"), now_ms=0)
    dedup.offer(KEY, "frame", Reception("gw-b", rssi=-120), now_ms=0)
    (uplink,) = dedup.pop_due(now_ms=0)
    assert uplink.best.gateway == "gw-b" and uplink.time_ms is None
