"""The command ledger: executes once, refuses the expired, answers redeliveries with the first
result, survives reopening the file, and stays bounded saying what it dropped."""

from __future__ import annotations

from pathlib import Path

from edge_agent.commands.contract import CommandRequest, make_result
from edge_agent.commands.ledger import CommandLedger

T0 = 1_764_060_000_000


def _request(n: int = 1, issued: int = T0, life_ms: int = 60_000) -> CommandRequest:
    return CommandRequest(id=f"c-{n:04d}", device="pole-0001", command="set_dimming",
                          params={"level": 40}, issued_by="zhang.san", issued_ts=issued,
                          expires_ts=issued + life_ms)


def _ledger(tmp_path: Path, **bounds: float) -> CommandLedger:
    ledger = CommandLedger(tmp_path / "commands.sqlite", **bounds)  # type: ignore[arg-type]
    ledger.open()
    return ledger


def _deliver(ledger: CommandLedger, request: CommandRequest, now: int,
             executed: list[str]) -> object:
    """What the agent does with a delivery: admit, execute when told, finish."""
    admission = ledger.admit(request, now)
    if admission.decision != "execute":
        return admission.result
    executed.append(request.id)
    result = make_result(request, "succeeded", now + 80, readback="dimming", value=40,
                         started_ts=now)
    ledger.finish(request.id, result)
    return result


def test_a_redelivered_command_executes_once_and_gets_the_first_result(tmp_path: Path) -> None:
    ledger, executed = _ledger(tmp_path), []
    first = _deliver(ledger, _request(), T0 + 100, executed)
    again = _deliver(ledger, _request(), T0 + 5000, executed)
    assert executed == ["c-0001"] and again == first
    assert ledger.totals()["duplicate"] == 1 and ledger.totals()["admitted"] == 1


def test_a_duplicate_of_a_command_still_running_is_not_run_again(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    assert ledger.admit(_request(), T0).decision == "execute"
    admission = ledger.admit(_request(), T0 + 10)
    assert admission.decision == "duplicate" and admission.result is not None
    assert admission.result.outcome == "duplicate" and "不重复执行" in admission.result.reason_zh


def test_a_command_arriving_after_its_expiry_is_never_executed(tmp_path: Path) -> None:
    ledger, executed = _ledger(tmp_path), []
    late = _deliver(ledger, _request(life_ms=60_000), T0 + 60_001, executed)
    assert executed == [] and late.outcome == "expired"  # type: ignore[attr-defined]
    assert late.reason_zh == "命令到达网关时已过期 0 秒，未执行"  # type: ignore[attr-defined]
    assert late.started_ts is None and late.finished_ts == T0 + 60_001  # type: ignore[attr-defined]
    # Redelivered later still: the same answer, never executed.
    assert _deliver(ledger, _request(), T0 + 90_000, executed) == late and executed == []
    # At its expiry instant it still runs.
    assert _deliver(ledger, _request(2), T0 + 60_000, executed) is not None
    assert executed == ["c-0002"]


def test_the_ledger_survives_reopening_the_file(tmp_path: Path) -> None:
    ledger, executed = _ledger(tmp_path), []
    first = _deliver(ledger, _request(1), T0, executed)
    assert ledger.admit(_request(2), T0).decision == "execute"  # then the agent died
    ledger.close()
    reopened = _ledger(tmp_path)
    assert reopened.unfinished() == [_request(2)]
    assert _deliver(reopened, _request(1), T0 + 1000, executed) == first
    assert executed == ["c-0001"]
    interrupted = reopened.admit(_request(2), T0 + 1000)
    assert interrupted.decision == "duplicate" and interrupted.result.outcome == "duplicate"  # type: ignore[union-attr]
    assert reopened.result("c-0001") == first and reopened.result("c-0002") is None


def test_bounded_by_count_and_age_and_says_what_it_dropped(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, max_ids=3, max_age_s=3600)
    drops = [ledger.admit(_request(n), T0 + n).dropped for n in range(5)]
    assert drops == [{}, {}, {}, {"count": 1, "unexpired": 1}, {"count": 1, "unexpired": 1}]
    assert len(ledger) == 3 and ledger.result("c-0000") is None
    # An hour and a bit later, the old ids go by age (all long expired).
    later = ledger.admit(_request(9, issued=T0 + 3_700_000), T0 + 3_700_000)
    assert later.dropped == {"age": 3} and len(ledger) == 1
    ledger.close()
    totals = _ledger(tmp_path, max_ids=3, max_age_s=3600).totals()
    dropped = (totals["dropped_count"], totals["dropped_age"], totals["dropped_unexpired"])
    assert dropped == (2, 3, 2)


def test_finish_needs_an_admitted_id(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    result = make_result(_request(7), "succeeded", T0)
    try:
        ledger.finish("c-0007", result)
    except KeyError as err:
        assert "c-0007" in str(err)
    else:
        raise AssertionError("finish accepted an id that was never admitted")
