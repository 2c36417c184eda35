"""Read planning: contiguous points merge, limits and gaps split requests."""

from __future__ import annotations

from device_profiles.schema import ModbusTcpProtocol, Point
from edge_agent.protocols.modbus.planner import plan_reads


def _p(name: str, address: int, type_: str = "uint16", table: str = "holding") -> Point:
    return Point.model_validate({"name": name, "label_zh": name, "register_type": table,
                                 "address": address, "type": type_})


def _proto(**kw: int) -> ModbusTcpProtocol:
    return ModbusTcpProtocol.model_validate({"kind": "modbus_tcp", **kw})


def test_contiguous_points_become_one_read() -> None:
    points = [_p("a", 0), _p("b", 1, "float32"), _p("c", 3, "uint32")]
    (read,) = plan_reads(points, _proto())
    assert (read.start, read.count) == (0, 5)
    assert [p.name for p in read.points] == ["a", "b", "c"]


def test_gap_beyond_allowance_splits() -> None:
    points = [_p("a", 0), _p("b", 10)]
    assert [(r.start, r.count) for r in plan_reads(points, _proto())] == [(0, 1), (10, 1)]
    assert [(r.start, r.count) for r in plan_reads(points, _proto(max_gap_registers=9))] == [
        (0, 11)]


def test_register_limit_splits_and_never_cuts_a_value() -> None:
    points = [_p(f"p{i}", i * 2, "float32") for i in range(100)]  # 200 registers
    reads = plan_reads(points, _proto())
    assert all(r.count <= 125 for r in reads)
    assert sum(len(r.points) for r in reads) == 100
    for r in reads:
        assert all(r.start <= p.address and p.address + 2 <= r.start + r.count for p in r.points)


def test_tables_are_never_mixed() -> None:
    points = [_p("h", 0), _p("i", 1, table="input"), _p("c", 0, "bool", "coil")]
    tables = [r.table for r in plan_reads(points, _proto())]
    assert sorted(tables) == ["coil", "holding", "input"]


def test_bits_limit() -> None:
    points = [_p(f"c{i}", i, "bool", "coil") for i in range(2500)]
    reads = plan_reads(points, _proto())
    assert [r.count for r in reads] == [2000, 500]
