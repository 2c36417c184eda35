"""The outbox against a real event centre (uvicorn in a thread on a free loopback port) that
is down, comes up, goes away and comes back: every alarm occurrence is exactly one event, and
its clear is recorded after its raise."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cloud_broker.events.outbox import Outbox
from cloud_broker.events.service import EventCentre, EventCentreConfig
from cloud_broker.rules.engine import AlarmEvent
from dciot.runtime import free_port
from device_profiles.schema import PROFILES_ROOT

Poll = Callable[..., object]
CATALOGUE = """\
schema: 1
departments:
  - {id: lighting, name_zh: 城市照明管理处}
entries:
  - domain: smart_pole
    rule: pole_tilted
    category: 市政设施/照明设施
    grade: 二级
    department: lighting
    handling_time_limit_minutes: 120
    closing_standard: 灯杆扶正加固，倾角恢复
"""


def alarm(alarm_id: str, state: str = "raised", rule: str = "pole_tilted",
          raised_ts: int = 1_764_000_000_000) -> dict[str, object]:
    cleared_ts = raised_ts + 90_000 if state == "cleared" else None
    return AlarmEvent(
        alarm_id=alarm_id, state=state, device="pole-001", device_name="东昌路1号灯杆",
        gateway="gw-a", site=None, domain="smart_pole", profile="dc-smartpole-v1", rule=rule,
        kind="threshold", point="tilt", severity="major", title_zh="灯杆倾斜",
        description_zh="", value=6.2, threshold=5.0, unit="°", ts=cleared_ts or raised_ts,
        raised_ts=raised_ts, cleared_ts=cleared_ts).as_dict()


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[EventCentre]:
    """Not started: each test decides when the centre is up."""
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    centre = EventCentre(EventCentreConfig(
        port=free_port(), db_path=tmp_path / "centre" / "events.sqlite",
        catalogue_path=catalogue, profiles_dir=PROFILES_ROOT / "streetlight", broker=None,
        overdue_check_s=3600))
    try:
        yield centre
    finally:
        centre.stop()


@pytest.fixture
def new_outbox(tmp_path: Path, centre: EventCentre) -> Iterator[Callable[[], Outbox]]:
    """Outboxes on one SQLite file (a new object is a restarted rule engine)."""
    made: list[Outbox] = []

    def make() -> Outbox:
        outbox = Outbox(tmp_path / "rules" / "outbox.sqlite", centre.url, timeout_s=2.0,
                        backoff_initial_s=0.02, backoff_max_s=0.2, rng=random.Random(7))
        made.append(outbox)
        return outbox

    yield make
    for outbox in made:
        outbox.stop()


def events(centre: EventCentre) -> list[dict[str, object]]:
    return list(httpx.get(f"{centre.url}/api/v1/events", timeout=5).json())


def wait_for_retries(outbox: Outbox, poll: Poll, at_least: int = 2) -> None:
    """The centre is down: wait until the outbox has failed (and backed off) a few times."""
    seen = outbox.stats().failed_attempts
    poll(lambda: outbox.stats().failed_attempts >= seen + at_least, timeout_s=10,
         what="delivery attempts against the stopped centre")


def delivered_all(outbox: Outbox, poll: Poll) -> None:
    poll(lambda: outbox.stats().pending == 0, timeout_s=20, what="the outbox to drain")


def test_enqueue_is_durable_before_anything_runs(new_outbox: Callable[[], Outbox]) -> None:
    first = new_outbox()
    assert first.enqueue(alarm("occ-1"))
    assert not first.enqueue({**alarm("occ-1"), "state": "acknowledged"})
    first.stop()
    assert new_outbox().stats().pending == 1
    with pytest.raises(ValueError, match="alarm_id"):
        new_outbox().enqueue({"state": "raised"})


def test_delivers_once_the_centre_comes_back(centre: EventCentre, poll: Poll,
                                             new_outbox: Callable[[], Outbox]) -> None:
    outbox = new_outbox()
    outbox.start()
    outbox.enqueue(alarm("occ-1"))
    wait_for_retries(outbox, poll)
    assert outbox.stats().pending == 1
    assert outbox.stats().last_error is not None
    centre.start()
    delivered_all(outbox, poll)
    found = events(centre)
    assert [(e["key"], e["status"]) for e in found] == [("occ-1", "reported")]
    assert outbox.stats().delivered == 1


def test_a_restarted_outbox_resends_without_a_duplicate(centre: EventCentre, poll: Poll,
                                                        new_outbox: Callable[[], Outbox]
                                                        ) -> None:
    before = new_outbox()
    before.start()
    before.enqueue(alarm("occ-1"))
    wait_for_retries(before, poll)
    before.stop()  # the rule engine restarts before the centre is back
    after = new_outbox()
    after.enqueue(alarm("occ-1"))  # ...and publishes the occurrence again after restoring it
    assert after.stats().pending == 2
    after.start()
    centre.start()
    delivered_all(after, poll)
    assert [e["key"] for e in events(centre)] == ["occ-1"]
    assert after.stats().delivered == 2  # both rows accepted: 201, then 200 (same event)


def test_the_clear_follows_the_raise_through_an_outage(centre: EventCentre, poll: Poll,
                                                       new_outbox: Callable[[], Outbox]
                                                       ) -> None:
    outbox = new_outbox()
    outbox.start()
    outbox.enqueue(alarm("occ-1"))
    outbox.enqueue(alarm("occ-1", state="cleared"))
    wait_for_retries(outbox, poll)
    centre.start()
    delivered_all(outbox, poll)
    [event] = events(centre)
    assert (event["key"], event["reported_ts"]) == ("occ-1", 1_764_000_000_000)
    assert event["alarm_cleared_ts"] == 1_764_000_090_000


def test_the_centre_going_away_between_raise_and_clear(centre: EventCentre, poll: Poll,
                                                       new_outbox: Callable[[], Outbox]) -> None:
    centre.start()
    outbox = new_outbox()
    outbox.start()
    outbox.enqueue(alarm("occ-1"))
    delivered_all(outbox, poll)
    centre.stop()
    outbox.enqueue(alarm("occ-1", state="cleared"))
    outbox.enqueue(alarm("occ-2", raised_ts=1_764_000_100_000))
    wait_for_retries(outbox, poll)
    centre.start()
    delivered_all(outbox, poll)
    found = {e["key"]: e for e in events(centre)}
    assert sorted(found) == ["occ-1", "occ-2"]
    assert found["occ-1"]["alarm_cleared_ts"] == 1_764_000_090_000
    assert found["occ-2"]["alarm_cleared_ts"] is None


def test_an_unmapped_alarm_is_dropped_and_counted(centre: EventCentre, poll: Poll,
                                                  new_outbox: Callable[[], Outbox]) -> None:
    centre.start()
    outbox = new_outbox()
    outbox.start()
    outbox.enqueue(alarm("occ-noise", rule="noise_high"))
    outbox.enqueue(alarm("occ-noise", state="cleared", rule="noise_high"))
    outbox.enqueue(alarm("occ-1"))
    delivered_all(outbox, poll)
    stats = outbox.stats()
    assert (stats.dropped, stats.delivered, stats.failed_attempts) == (2, 1, 0)
    assert [e["key"] for e in events(centre)] == ["occ-1"]


def test_a_backlog_is_delivered_in_order(centre: EventCentre, poll: Poll,
                                         new_outbox: Callable[[], Outbox]) -> None:
    outbox = new_outbox()
    for i in range(20):
        outbox.enqueue(alarm(f"occ-{i}", raised_ts=1_764_000_000_000 + i))
    outbox.start()
    centre.start()
    delivered_all(outbox, poll)
    found = events(centre)
    assert [e["key"] for e in reversed(found)] == [f"occ-{i}" for i in range(20)]
