"""Line protocol escaping (the e2e test proves these lines on a real InfluxDB)."""

from __future__ import annotations

import pytest

from cloud_broker.ingest.lineprotocol import LineProtocolError, format_field, format_line

CASES = [
    pytest.param({"site": "East Street"}, "m,site=East\\ Street f=1i 5", id="space"),
    pytest.param({"site": "a,b"}, "m,site=a\\,b f=1i 5", id="comma"),
    pytest.param({"site": "k=v"}, "m,site=k\\=v f=1i 5", id="equals"),
    pytest.param({"site": "东昌路 1号"}, "m,site=东昌路\\ 1号 f=1i 5", id="chinese-and-space"),
    pytest.param({"b": "2", "a": "1"}, "m,a=1,b=2 f=1i 5", id="sorted-tags"),
    pytest.param({"a": ""}, "m f=1i 5", id="empty-tag-left-out"),
]


@pytest.mark.parametrize(("tags", "line"), CASES)
def test_tag_escaping(tags: dict[str, str], line: str) -> None:
    assert format_line("m", tags, {"f": 1}, 5) == line


def test_measurement_escapes_comma_and_space_but_not_equals() -> None:
    assert format_line("a b,c=d", {}, {"f": True}, 1) == "a\\ b\\,c=d f=true 1"


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (3, "3i"), (-7, "-7i"), (2.5, "2.5"), (220.1, "220.1"),
    (1e-7, "1e-07"), ('say "hi" \\ ok', '"say \\"hi\\" \\\\ ok"'), ("多行\n文本", '"多行\\n文本"'),
])
def test_field_values(value: object, text: str) -> None:
    assert format_field(value) == text  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(LineProtocolError, match="not finite"):
        format_field(bad)


@pytest.mark.parametrize("tags", [{"a": "x\ny"}, {"a": "ends\\"}])
def test_tags_that_cannot_be_written_are_refused(tags: dict[str, str]) -> None:
    with pytest.raises(LineProtocolError):
        format_line("m", tags, {"f": 1}, 1)


def test_point_needs_a_field() -> None:
    with pytest.raises(LineProtocolError, match="at least one field"):
        format_line("m", {}, {}, 1)
