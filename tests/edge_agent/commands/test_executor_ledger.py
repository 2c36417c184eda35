"""The executor's start-up recovery and offline results, on a real ledger file."""

from __future__ import annotations

from pathlib import Path

from device_profiles.schema import Profile
from edge_agent.commands.contract import CommandRequest, CommandResult
from edge_agent.commands.executor import CommandExecutor, CommandTarget
from edge_agent.commands.ledger import CommandLedger


def _request(now: int, command_id: str = "c-1") -> CommandRequest:
    return CommandRequest(id=command_id, device="pole-001", command="lamp_on", issued_by="t",
                          issued_ts=now, expires_ts=now + 60_000)


def test_commands_interrupted_by_a_stop_are_reported_failed_at_start(
        tmp_path: Path, pole: Profile, now: int) -> None:
    ledger = CommandLedger(tmp_path / "ledger.sqlite")
    ledger.open()
    assert ledger.admit(_request(now), now).decision == "execute"
    ledger.close()  # the agent stopped while executing it
    ledger.open()
    sent: list[tuple[str, bytes]] = []
    executor = CommandExecutor("gw", {"pole-001": CommandTarget("pole-001", pole)}, ledger,
                               lambda device, payload: sent.append((device, payload)) or True,
                               clock=lambda: now + 5_000)
    assert executor.recover() == 1
    result = ledger.result("c-1")
    assert result is not None and result.outcome == "failed" and result.started_ts is None
    assert [CommandResult.decode(p) for _d, p in sent] == [result]
    assert ledger.unfinished() == [] and executor.recover() == 0


def test_results_made_while_offline_go_out_on_the_next_connect(
        tmp_path: Path, pole: Profile, now: int) -> None:
    ledger = CommandLedger(tmp_path / "ledger.sqlite")
    ledger.open()
    online = False
    sent: list[bytes] = []

    def publish(_device: str, payload: bytes) -> bool:
        if online:
            sent.append(payload)
        return online

    executor = CommandExecutor("gw", {"pole-001": CommandTarget("pole-001", pole)}, ledger,
                               publish, clock=lambda: now)
    # A request for a device whose protocol has no driver here: rejected at once, offline.
    executor.handle("dc/v1/gw/gw/cmd/req/pole-001", _request(now).encode())
    assert sent == []
    online = True
    assert executor.flush() == 1 and executor.flush() == 0
    (result,) = [CommandResult.decode(p) for p in sent]
    assert result.outcome == "rejected" and "not supported yet" in result.reason_en
