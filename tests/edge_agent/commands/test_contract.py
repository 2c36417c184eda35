"""The command topics and payloads: round trips, what is refused, and that a gateway's topics
stay inside its own subtree."""

from __future__ import annotations

import json

import pytest
from paho.mqtt.client import topic_matches_sub

from edge_agent.commands.contract import (
    COMMAND_RESULTS_SUBSCRIPTION,
    CommandRequest,
    CommandResult,
    ContractError,
    command_request_subscription,
    command_request_topic,
    command_result_topic,
    make_result,
    parse_command_topic,
    request_problem,
)

T0 = 1_764_060_000_000
REQUEST = {"schema": "dc.command/1", "id": "3f2b9c1e-8d4a-4f6b-9a1c-2e7d5b3c9f01",
           "device": "pole-0001", "command": "set_dimming", "params": {"level": 40},
           "issued_by": "zhang.san", "issued_ts": T0, "expires_ts": T0 + 60_000}


def test_request_round_trip_keeps_types() -> None:
    request = CommandRequest.decode(json.dumps(REQUEST))
    assert request.params == {"level": 40} and isinstance(request.params["level"], int)
    assert json.loads(request.encode()) == REQUEST
    flags = CommandRequest.decode(json.dumps({**REQUEST, "params": {"on": True, "x": 1.5}}))
    assert flags.params == {"on": True, "x": 1.5} and flags.params["on"] is True


@pytest.mark.parametrize(("change", "complaint"), [
    ({"id": "a/b"}, "id"),
    ({"device": "+"}, "device"),
    ({"command": "Start Pump"}, "command"),
    ({"expires_ts": T0}, "expires_ts must be after issued_ts"),
    ({"expires_ts": T0 + 25 * 3600 * 1000}, "at most 86400 s"),
    ({"colour": "red"}, "colour"),
    ({"schema": "dc.command/2"}, "schema"),
    ({"issued_by": ""}, "issued_by"),
    ({"params": {"level": [1, 2]}}, "params"),
])
def test_bad_requests_are_refused_saying_why(change: dict[str, object], complaint: str) -> None:
    with pytest.raises(ContractError) as info:
        CommandRequest.decode(json.dumps({**REQUEST, **change}))
    assert complaint in str(info.value)


def test_nan_parameters_are_refused() -> None:
    with pytest.raises(ContractError, match="params"):
        CommandRequest.decode(json.dumps({**REQUEST, "params": {"level": float("nan")}}))


def test_expiry_boundary() -> None:
    request = CommandRequest.decode(json.dumps(REQUEST))
    assert not request.expired(T0 + 60_000) and request.expired(T0 + 60_001)


def test_result_round_trip_and_outcomes() -> None:
    request = CommandRequest.decode(json.dumps(REQUEST))
    result = make_result(request, "rejected", T0 + 5, reason_zh="集水池水位过低",
                         reason_en="interlock sump_not_dry", interlock="sump_not_dry",
                         value=0.21, limit=0.3, started_ts=T0 + 4)
    body = json.loads(result.encode())
    assert body["schema"] == "dc.command-result/1" and body["id"] == REQUEST["id"]
    assert (body["device"], body["command"], body["value"]) == ("pole-0001", "set_dimming", 0.21)
    assert CommandResult.decode(result.encode()) == result and result.final
    assert not make_result(request, "queued", None).final
    with pytest.raises(ContractError, match="outcome"):
        CommandResult.decode(json.dumps({**body, "outcome": "maybe"}))


def test_topics_stay_in_the_gateway_subtree() -> None:
    req, res = command_request_topic("gw-1", "pole-0001"), command_result_topic("gw-1",
                                                                                "pole-0001")
    assert (req, res) == ("dc/v1/gw/gw-1/cmd/req/pole-0001", "dc/v1/gw/gw-1/cmd/res/pole-0001")
    # What the broker ACL gives a gateway: write dc/v1/gw/{id}/#, read dc/v1/gw/{id}/cmd/#.
    assert topic_matches_sub("dc/v1/gw/gw-1/#", res)
    assert topic_matches_sub("dc/v1/gw/gw-1/cmd/#", req)
    mine = command_request_subscription("gw-1")
    assert topic_matches_sub(mine, req)
    assert not topic_matches_sub(mine, command_request_topic("gw-2", "pole-0001"))
    assert not topic_matches_sub(mine, res)  # a gateway does not hear its own results
    assert topic_matches_sub(COMMAND_RESULTS_SUBSCRIPTION, res)
    ref = parse_command_topic(req)
    assert ref is not None and (ref.kind, ref.gateway, ref.device) == ("req", "gw-1",
                                                                       "pole-0001")
    for bad in ("dc/v1/gw/gw-1/cmd/req", "dc/v1/gw/gw-1/cmd/other/d", "dc/v1/gw/gw-1/readings/d",
                "dc/v1/gw/gw 1/cmd/req/d", "dc/v1/gw/gw-1/cmd/req/d/extra"):
        assert parse_command_topic(bad) is None


def test_request_problem_refuses_foreign_or_mismatched_topics() -> None:
    request = CommandRequest.decode(json.dumps(REQUEST))
    assert request_problem("gw-1", command_request_topic("gw-1", "pole-0001"), request) is None
    assert "belongs to gateway 'gw-2'" in request_problem(  # type: ignore[operator]
        "gw-1", command_request_topic("gw-2", "pole-0001"), request)
    assert "arrived on the topic of 'pole-0002'" in request_problem(  # type: ignore[operator]
        "gw-1", command_request_topic("gw-1", "pole-0002"), request)
    assert "not a command request topic" in request_problem(  # type: ignore[operator]
        "gw-1", command_result_topic("gw-1", "pole-0001"), request)
