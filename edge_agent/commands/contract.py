"""The MQTT contract of downlink commands: topics and the request/result payloads.

Topics (under the gateway's own subtree, so the broker ACL that confines a gateway to
``dc/v1/gw/{its id}/`` for writing and to its own ``cmd/`` topics for reading covers them):

    dc/v1/gw/{gateway}/cmd/req/{device}   QoS 1  not retained  cloud -> gateway  dc.command/1
    dc/v1/gw/{gateway}/cmd/res/{device}   QoS 1  not retained  gateway -> cloud  dc.command-result/1

A gateway subscribes to ``dc/v1/gw/{its id}/cmd/req/+`` only; the cloud's command service
publishes requests (write ``dc/v1/gw/+/cmd/req/+``) and reads results (``dc/v1/gw/+/cmd/res/+``).
Requests use MQTT 5 request/response: the response topic property names the result topic and
the correlation data is echoed on the result. The cloud sets the response topic to the
device's result topic; the edge always answers there (`command_result_topic`) whatever the
request says, so a request cannot make a gateway publish outside its subtree. The MQTT message
expiry interval is set to the seconds left until ``expires_ts`` so the broker drops a request
nobody fetched in time; the edge still enforces ``expires_ts`` itself (a persistent session may
hand over a request late, and the broker counts from when it received the message).

``dc.command/1`` (cloud -> gateway)::

    {"schema": "dc.command/1", "id": "c3a1f7e2-...", "device": "pump-station-01",
     "command": "pump1_start", "params": {}, "issued_by": "zhang.san",
     "issued_ts": 1764060000123, "expires_ts": 1764060060123}

- ``id``: unique per command (a UUID is the usual choice; it must match ``ID_PATTERN``); a
  redelivery carries the same id and is executed at most once.
- ``command`` and ``params``: a command of the device's profile and its parameters (names and
  ranges validated at the edge against the profile before anything is sent).
- ``issued_ts`` / ``expires_ts``: UTC epoch ms. A request reaching the edge after ``expires_ts``
  is never executed and answered ``expired``. A command lives at most ``MAX_LIFETIME_MS``.

``dc.command-result/1`` (gateway -> cloud)::

    {"schema": "dc.command-result/1", "id": "c3a1f7e2-...", "device": "pump-station-01",
     "command": "pump1_start", "outcome": "rejected",
     "reason_zh": "1号扬水站集水池水位 0.21 m 低于干转保护水位 0.30 m，禁止启泵",
     "reason_en": "interlock sump_not_dry: sump_level 0.21 m fails >= 0.3",
     "interlock": "sump_not_dry", "value": 0.21, "limit": 0.3, "readback": null,
     "started_ts": 1764060000301, "finished_ts": 1764060000302}

- ``outcome``: ``succeeded`` (executed and the read-back confirmed it), ``rejected`` (bad
  parameters, unknown command, an interlock refused, the device's queue is full: nothing was
  sent), ``failed`` (the device answered with an error or could not be reached), ``timeout``
  (written, but the read-back did not confirm within the command's ``within_s``), ``expired``
  (arrived after ``expires_ts``: not executed), ``queued`` (interim: a LoRaWAN class A downlink
  waits for the device's next uplink; a final result with the same id follows), ``duplicate``
  (the id was already being executed; a redelivery of a finished command is answered with the
  earlier result instead).
- ``reason_zh`` for operators, ``reason_en`` for logs; empty on success.
- ``interlock``: the id of the interlock that refused, else null.
- ``value``: the value that tripped the interlock (a reading, seconds since a stop or start, a
  number of starts, or the age in seconds of a stale reading; null when it is missing), or the
  value read back; ``limit``: the interlock's limit. ``readback``: the point read back (null
  when nothing was read back).
- ``started_ts``: when the edge began executing (null when it never did: expired, rejected
  before execution, duplicate); ``finished_ts``: when the result was made (null for queued).

Pure module: it builds, parses and validates, nothing else.
"""

from __future__ import annotations

import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from device_profiles.rules import NAME_PATTERN
from edge_agent.uplink.contract import ID_RE, ROOT

COMMAND_SCHEMA = "dc.command/1"
COMMAND_RESULT_SCHEMA = "dc.command-result/1"
ID_PATTERN = ID_RE.pattern
MAX_LIFETIME_MS = 24 * 3600 * 1000
MAX_PARAMS = 32
COMMAND_RESULTS_SUBSCRIPTION = f"{ROOT}/gw/+/cmd/res/+"

Outcome = Literal["succeeded", "rejected", "failed", "timeout", "expired", "queued", "duplicate"]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
FINAL_OUTCOMES = frozenset(OUTCOMES) - {"queued", "duplicate"}
ParamValue = bool | int | float | str
ResultValue = bool | int | float | str | None


class ContractError(ValueError):
    """A payload that does not fit the contract (the message says why)."""


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)

    def encode(self) -> bytes:
        return json.dumps(self.model_dump(mode="json", by_alias=True), ensure_ascii=False,
                          separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def decode(cls, payload: bytes | str) -> Self:
        """Parse and validate; ContractError when it does not fit."""
        try:
            return cls.model_validate_json(payload)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: "
                                 f"{e['msg'].removeprefix('Value error, ')}"
                                 for e in err.errors())
            raise ContractError(f"not a valid {cls.__name__}: {problems}") from err


class CommandRequest(_Payload):
    """``dc.command/1``: what the cloud asks one device of a gateway to do."""

    schema_: Literal["dc.command/1"] = Field(COMMAND_SCHEMA, alias="schema")
    id: str = Field(pattern=ID_PATTERN)
    device: str = Field(pattern=ID_PATTERN)
    command: str = Field(pattern=NAME_PATTERN)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    issued_by: str = Field(min_length=1, max_length=64)
    issued_ts: int = Field(ge=0)
    expires_ts: int = Field(ge=0)

    @field_validator("params")
    @classmethod
    def _check_params(cls, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        if len(params) > MAX_PARAMS:
            raise ValueError(f"at most {MAX_PARAMS} parameters")
        for name, value in params.items():
            if not ID_RE.match(name):
                raise ValueError(f"parameter name {name!r} does not match {ID_PATTERN}")
            if isinstance(value, str) and len(value) > 64:
                raise ValueError(f"parameter {name!r}: text longer than 64 characters")
        return params

    @model_validator(mode="after")
    def _check_times(self) -> CommandRequest:
        if self.expires_ts <= self.issued_ts:
            raise ValueError("expires_ts must be after issued_ts")
        if self.expires_ts - self.issued_ts > MAX_LIFETIME_MS:
            raise ValueError(f"a command lives at most {MAX_LIFETIME_MS // 1000} s")
        return self

    def expired(self, now_ms: int) -> bool:
        """Past its expiry at `now_ms` (the edge's clock): it must not be executed."""
        return now_ms > self.expires_ts


class CommandResult(_Payload):
    """``dc.command-result/1``: what became of one command."""

    schema_: Literal["dc.command-result/1"] = Field(COMMAND_RESULT_SCHEMA, alias="schema")
    id: str = Field(pattern=ID_PATTERN)
    device: str = Field(pattern=ID_PATTERN)
    command: str = Field(pattern=NAME_PATTERN)
    outcome: Outcome
    reason_zh: str = ""
    reason_en: str = ""
    interlock: str | None = Field(None, pattern=NAME_PATTERN)
    value: ResultValue = None
    limit: ResultValue = None
    readback: str | None = Field(None, pattern=NAME_PATTERN)
    started_ts: int | None = Field(None, ge=0)
    finished_ts: int | None = Field(None, ge=0)

    @property
    def final(self) -> bool:
        """Whether no later result for this id is to be expected."""
        return self.outcome in FINAL_OUTCOMES


def make_result(request: CommandRequest, outcome: Outcome, finished_ts: int | None, *,
                reason_zh: str = "", reason_en: str = "", interlock: str | None = None,
                value: ResultValue = None, limit: ResultValue = None,
                readback: str | None = None, started_ts: int | None = None) -> CommandResult:
    """The result of `request` (id, device and command copied from it)."""
    return CommandResult(id=request.id, device=request.device, command=request.command,
                         outcome=outcome, reason_zh=reason_zh, reason_en=reason_en,
                         interlock=interlock, value=value, limit=limit, readback=readback,
                         started_ts=started_ts, finished_ts=finished_ts)


# -- topics -----------------------------------------------------------------------------------


def command_request_topic(gateway: str, device: str) -> str:
    return f"{ROOT}/gw/{gateway}/cmd/req/{device}"


def command_result_topic(gateway: str, device: str) -> str:
    return f"{ROOT}/gw/{gateway}/cmd/res/{device}"


def command_request_subscription(gateway: str) -> str:
    """What a gateway subscribes to: requests for any of its devices, nothing else."""
    return f"{ROOT}/gw/{gateway}/cmd/req/+"


class CommandTopic(BaseModel):
    """What a command topic names: ``kind`` "req" or "res", the gateway and the device."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["req", "res"]
    gateway: str
    device: str


def parse_command_topic(topic: str) -> CommandTopic | None:
    """Parse ``dc/v1/gw/{gateway}/cmd/{req|res}/{device}``; None when it is not one."""
    parts = topic.split("/")
    if (len(parts) != 7 or parts[0:3] != ["dc", "v1", "gw"] or parts[4] != "cmd"
            or parts[5] not in {"req", "res"}):
        return None
    gateway, kind, device = parts[3], parts[5], parts[6]
    if not (ID_RE.match(gateway) and ID_RE.match(device)):
        return None
    return CommandTopic(kind=kind, gateway=gateway, device=device)


def request_problem(gateway: str, topic: str, request: CommandRequest) -> str | None:
    """Why a request received on `topic` must not be acted on by `gateway`, or None."""
    ref = parse_command_topic(topic)
    if ref is None or ref.kind != "req":
        return f"{topic!r} is not a command request topic"
    if ref.gateway != gateway:
        return f"{topic!r} belongs to gateway {ref.gateway!r}, not {gateway!r}"
    if ref.device != request.device:
        return f"request for device {request.device!r} arrived on the topic of {ref.device!r}"
    return None

