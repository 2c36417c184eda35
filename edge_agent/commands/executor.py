"""Executes downlink commands at the edge: the decision modules of this package put to work.

Per request (handed over on the agent's event loop by `handle`):

    decode        a payload that is not a dc.command/1 is logged and counted ("malformed");
                  it is answered `rejected` when its id can still be read, else not at all
    topic         `request_problem` (another gateway's topic, device mismatch) -> rejected
    device        unknown to this gateway, or its protocol cannot execute commands yet
                  (only Modbus TCP/RTU do) -> rejected
    ledger        `admit`: expired / duplicate are answered at once (nothing executed)
    queue         per device (`DeviceQueues`); a full queue -> rejected
    job           expiry again, `interlocks.check` against the device's reading history, the
                  write, `record_execution`, then the read-back point is read every
                  `readback_interval_s` until it matches (± tolerance) or `within_s` passes
                  -> succeeded / timeout; a write the device refused or could not take -> failed

Nothing is answered before the ledger knows the outcome (`finish`). Results go out QoS 1 on the
device's result topic; one that cannot be handed to MQTT now (offline) is kept (bounded) and
sent on the next connect (`flush`); it is in the ledger either way. At start-up, commands the
ledger admitted but never finished (the agent stopped while running them) are finished as
`failed` and published: at most once, so they are not retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import Counter

from device_profiles.commands import Command, ModbusWrite
from device_profiles.rules import NAME_PATTERN
from device_profiles.schema import DataType, Profile
from edge_agent.commands.contract import (
    CommandRequest,
    CommandResult,
    ContractError,
    Outcome,
    make_result,
    parse_command_topic,
    request_problem,
)
from edge_agent.commands.history import DeviceHistory
from edge_agent.commands.interlocks import check, record_execution
from edge_agent.commands.ledger import CommandLedger
from edge_agent.commands.queues import DeviceQueueFull, DeviceQueues
from edge_agent.errors import DeviceException, DeviceTimeout, EdgeError
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.modbus.driver import ModbusDriver
from edge_agent.scaling import Value, to_engineering
from edge_agent.uplink.contract import ID_RE

log = logging.getLogger(__name__)

EXECUTABLE_PROTOCOLS = frozenset({"modbus_tcp", "modbus_rtu"})
MAX_UNSENT = 1000
FLOAT_EPSILON = 1e-6


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class CommandTarget:
    """A device of this gateway as commands see it: its profile, display name and driver
    (None: its protocol cannot execute commands yet)."""

    device: str
    profile: Profile
    name: str | None = None
    driver: ModbusDriver | None = None


class CommandExecutor:
    def __init__(self, gateway: str, targets: Mapping[str, CommandTarget],
                 ledger: CommandLedger, publish: Callable[[str, bytes], bool],
                 metrics: EdgeMetrics | None = None, *, max_per_device: int = 16,
                 readback_interval_s: float = 0.2,
                 clock: Callable[[], int] = now_ms) -> None:
        self.gateway = gateway
        self.targets = dict(targets)
        self.ledger = ledger
        self.publish = publish
        self.clock = clock
        self.readback_interval_s = readback_interval_s
        self.queues = DeviceQueues(max_per_device)
        self.histories = {device: DeviceHistory(device) for device in self.targets}
        self._unsent: OrderedDict[str, CommandResult] = OrderedDict()
        self._jobs: set[asyncio.Future[None]] = set()
        self._outcomes = None if metrics is None else Counter(
            "dciot_edge_commands", "Command results published, by outcome (malformed: "
            "requests that could not be read)", ["outcome"], registry=metrics.registry)

    # -- start-up and readings ------------------------------------------------------------

    def recover(self) -> int:
        """Finish as failed (and publish) what the ledger admitted but never finished."""
        interrupted = self.ledger.unfinished()
        for request in interrupted:
            self._conclude(request, make_result(
                request, "failed", self.clock(),
                reason_zh="网关在执行该命令时中断（重启），结果未知，未重试；请核实设备状态",
                reason_en="the agent stopped while executing it; outcome unknown, not retried"))
        return len(interrupted)

    def observe(self, device: str, ts_ms: int, values: Mapping[str, Value]) -> None:
        """One reading of a device (the interlocks' fresh readings)."""
        history = self.histories.get(device)
        if history is not None:
            history.observe(ts_ms, values)

    # -- arrival ----------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> None:
        """A message on the command request subscription (call on the event loop)."""
        try:
            request = CommandRequest.decode(payload)
        except ContractError as err:
            self._count("malformed")
            log.warning("command request on %s rejected: %s", topic, err)
            salvaged = _salvage(topic, payload, self.clock())
            if salvaged is not None:
                salvaged = salvaged.model_copy(update={
                    "reason_zh": "命令格式不符合 dc.command/1，未执行",
                    "reason_en": str(err)[:500]})
                self._send(salvaged)
            return
        problem = request_problem(self.gateway, topic, request)
        if problem is not None:
            self._reject(request, "命令主题与命令内容不符，未执行", problem)
            return
        target = self.targets.get(request.device)
        if target is None:
            self._reject(request, f"本网关没有设备 {request.device}，未执行",
                         f"device {request.device!r} is not on gateway {self.gateway}")
            return
        kind = target.profile.protocol.kind
        if target.driver is None or kind not in EXECUTABLE_PROTOCOLS:
            self._reject(request, f"暂不支持向 {kind} 协议设备下发命令，未执行",
                         f"commands to {kind} devices are not supported yet")
            return
        admission = self.ledger.admit(request, self.clock())
        if admission.dropped:
            log.info("command ledger dropped old ids: %s", admission.dropped)
        if admission.decision == "duplicate" and admission.result is not None:
            self._count("duplicate")
            log.info("command %s delivered again: answered %s, not executed", request.id,
                     admission.result.outcome)
            self._publish(admission.result)
            return
        if admission.result is not None:
            self._send(admission.result)
            return
        try:
            future = self.queues.submit(request.device, lambda: self._job(request, target))
        except DeviceQueueFull as full:
            self._conclude(request, make_result(request, "rejected", self.clock(),
                                                reason_zh=full.reason_zh,
                                                reason_en=full.reason_en))
            return
        self._jobs.add(future)
        future.add_done_callback(self._job_done)

    def _job_done(self, future: asyncio.Future[None]) -> None:
        self._jobs.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("command job crashed: %r", future.exception())

    def _reject(self, request: CommandRequest, reason_zh: str, reason_en: str) -> None:
        log.warning("command %s rejected: %s", request.id, reason_en)
        self._send(make_result(request, "rejected", self.clock(), reason_zh=reason_zh,
                               reason_en=reason_en))

    # -- execution --------------------------------------------------------------------------

    async def _job(self, request: CommandRequest, target: CommandTarget) -> None:
        try:
            result = await self._execute(request, target)
        except asyncio.CancelledError:
            raise  # stopping: the ledger keeps it unfinished, reported at the next start
        except Exception as err:  # a bug must still answer the operator
            log.exception("command %s crashed", request.id)
            result = make_result(request, "failed", self.clock(),
                                 reason_zh="网关执行命令时发生内部错误，请核实设备状态",
                                 reason_en=f"internal error: {err!r}"[:500])
        self._conclude(request, result)

    async def _execute(self, request: CommandRequest, target: CommandTarget) -> CommandResult:
        now = self.clock()
        if request.expired(now):
            late_s = (now - request.expires_ts) / 1000
            return make_result(request, "expired", now,
                               reason_zh=f"命令排队期间已过期 {late_s:.0f} 秒，未执行",
                               reason_en=f"expired {late_s:.1f} s before its turn; not executed")
        profile, history = target.profile, self.histories[request.device]
        verdict = check(profile, request.command, request.params, history, now,
                        device_name=target.name or request.device)
        if not verdict.ok:
            log.warning("command %s refused: %s", request.id, verdict.reason_en)
            return make_result(request, "rejected", self.clock(), reason_zh=verdict.message_zh,
                               reason_en=verdict.reason_en, interlock=verdict.interlock,
                               value=verdict.value, limit=verdict.limit)
        command = profile.command(request.command)
        mapping = command.mapping
        assert isinstance(mapping, ModbusWrite), "profile check: modbus devices take modbus_write"
        assert target.driver is not None
        point = profile.write_target(command)
        value = command.resolve(mapping.value, verdict.params)
        started = self.clock()
        try:
            await target.driver.write_point(point, value, mapping.function_code)
        except (EdgeError, ValueError) as err:
            log.warning("command %s: write failed: %s", request.id, err)
            return make_result(request, "failed", self.clock(), started_ts=started,
                               reason_zh=f"写入设备失败（{_kind_zh(err)}），命令未执行",
                               reason_en=f"write failed: {err}"[:500])
        record_execution(profile, request.command, history, started)
        return await self._confirm(request, target, command, verdict.params, started)

    async def _confirm(self, request: CommandRequest, target: CommandTarget, command: Command,
                       params: Mapping[str, object], started: int) -> CommandResult:
        readback = command.readback
        if readback is None:
            return make_result(request, "succeeded", self.clock(), started_ts=started)
        assert target.driver is not None
        point = target.profile.point(readback.point)
        expect = command.resolve(readback.expect, params)  # type: ignore[arg-type]
        deadline = started + round(readback.within_s * 1000)
        seen: Value | None = None
        error: Exception | None = None
        while True:
            try:
                seen = to_engineering(point, await target.driver.read_point(point))
                error = None
            except EdgeError as err:
                error = err
            if seen is not None and error is None and _matches(point.type, seen, expect,
                                                               readback.tolerance):
                return make_result(request, "succeeded", self.clock(), started_ts=started,
                                   value=seen, readback=point.name)
            left_ms = deadline - self.clock()
            if left_ms <= 0:
                break
            await asyncio.sleep(min(self.readback_interval_s, left_ms / 1000))
        label = point.label_zh
        if error is not None:
            reason_zh = (f"已写入，但 {readback.within_s:g} 秒内无法读回{label}确认"
                         f"（{_kind_zh(error)}）")
            reason_en = f"written; read-back of {point.name} failed: {error}"
        else:
            reason_zh = (f"已写入，但 {readback.within_s:g} 秒内{label}读回 {seen}，"
                         f"未达到期望值 {expect}")
            reason_en = (f"written; {point.name} read back {seen}, not {expect} within "
                         f"{readback.within_s:g} s")
        return make_result(request, "timeout", self.clock(), started_ts=started, value=seen,
                           limit=expect, readback=point.name, reason_zh=reason_zh,
                           reason_en=reason_en[:500])

    # -- results ----------------------------------------------------------------------------

    def _conclude(self, request: CommandRequest, result: CommandResult) -> None:
        try:
            self.ledger.finish(request.id, result)
        except KeyError:
            log.warning("command %s was dropped from the ledger before it finished", request.id)
        self._send(result)

    def _send(self, result: CommandResult) -> None:
        self._count(result.outcome)
        log.info("command %s %s on %s: %s %s", result.id, result.command, result.device,
                 result.outcome, result.reason_en)
        self._publish(result)

    def _publish(self, result: CommandResult) -> None:
        if not self.publish(result.device, result.encode()):
            self._hold(result)

    def _hold(self, result: CommandResult) -> None:
        self._unsent[result.id] = result
        self._unsent.move_to_end(result.id)
        while len(self._unsent) > MAX_UNSENT:
            dropped, _ = self._unsent.popitem(last=False)
            log.warning("result of command %s not sent (offline too long); it stays in the "
                        "ledger", dropped)

    def flush(self) -> int:
        """Publish the results kept while offline (call after a connect); how many went out."""
        sent = 0
        while self._unsent:
            command_id, result = next(iter(self._unsent.items()))
            if not self.publish(result.device, result.encode()):
                break
            del self._unsent[command_id]
            sent += 1
        return sent

    def _count(self, outcome: str) -> None:
        if self._outcomes is not None:
            self._outcomes.labels(outcome=outcome).inc()

    async def close(self) -> None:
        """Cancel queued and running commands (they stay unfinished in the ledger)."""
        await self.queues.close()


def _matches(data_type: DataType, seen: Value, expect: object, tolerance: float) -> bool:
    if isinstance(seen, bool) or isinstance(expect, bool) or data_type == DataType.bool:
        return bool(seen) == bool(expect)
    if not isinstance(expect, int | float):
        return False
    slack = tolerance + FLOAT_EPSILON * max(1.0, abs(float(expect)))
    return abs(float(seen) - float(expect)) <= slack


def _kind_zh(err: Exception) -> str:
    if isinstance(err, DeviceTimeout):
        return "设备无应答"
    if isinstance(err, DeviceException):
        return "设备拒绝了该操作"
    if isinstance(err, ValueError):
        return "数值无法写入"
    return "通信故障"


def _salvage(topic: str, payload: bytes, now: int) -> CommandResult | None:
    """A `rejected` result for an unreadable request whose id can still be read, else None."""
    ref = parse_command_topic(topic)
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if ref is None or not isinstance(body, dict):
        return None
    command_id, command = body.get("id"), body.get("command")
    if not isinstance(command_id, str) or not ID_RE.match(command_id):
        return None
    if not isinstance(command, str) or not re.match(NAME_PATTERN, command):
        command = "unknown"
    outcome: Outcome = "rejected"
    return CommandResult(id=command_id, device=ref.device, command=command, outcome=outcome,
                         finished_ts=now)
