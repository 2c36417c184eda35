"""grafana_expand reproduces Grafana's InfluxQL expansion: one table per rule of
/work/shared/grafana-notes.md (cases from Grafana's own datasource.test.ts where it has them)."""

from __future__ import annotations

import pytest

from dashboards.grafana_expand import (
    VariableValue,
    escape_regex,
    expand,
    find_variables,
    format_interval,
    interval_for,
    interval_to_ms,
    round_interval,
)

FROM, TO = 1_700_000_000_000, 1_700_003_600_000  # one hour


def _expand(query: str, variables: dict[str, VariableValue] | None = None,
            interval_ms: int = 10_000) -> str:
    return expand(query, time_from_ms=FROM, time_to_ms=TO, variables=variables or {},
                  interval_ms=interval_ms)


V = VariableValue
SITES = ("东昌-1", "b.c")


@pytest.mark.parametrize(("query", "variables", "expected"), [
    # rule 1: a string value starting with a number goes in raw
    ("SELECT v / $k FROM m", {"k": V(("1.0",))}, "SELECT v / 1.0 FROM m"),
    ("WHERE x =~ /^$k$/", {"k": V(("12.5a",))}, "WHERE x =~ /^12.5a$/"),
    ("WHERE x = '$k'", {"k": V(("12.2",))}, "WHERE x = '12.2'"),
    # rule 2: multi-value: escaped, (a|b); one value in a list is still (a)
    ("WHERE s =~ /^$s$/", {"s": V(SITES, multi=True)}, "WHERE s =~ /^(东昌-1|b\\.c)$/"),
    ("WHERE s =~ /^$s$/", {"s": V(("a.b",), multi=True)}, "WHERE s =~ /^(a\\.b)$/"),
    ("WHERE p = '$s'", {"s": V(("/special/path", "/some/other/path"), multi=True)},
     "WHERE p = '(\\/special\\/path|\\/some\\/other\\/path)'"),
    # rule 3: single value escaped only when the query has it in a regex literal
    ("WHERE p = '$s'", {"s": V(("/special/path",))}, "WHERE p = '/special/path'"),
    ("WHERE p =~ /$s/", {"s": V(("/special/path",))}, "WHERE p =~ /\\/special\\/path/"),
    ("WHERE p !~ /^$s$/", {"s": V(("/special/path",))}, "WHERE p !~ /^\\/special\\/path$/"),
    ("WHERE p /$s/", {"s": V(("/special/path",))}, "WHERE p /\\/special\\/path/"),
    ("WHERE p =~ /^($s)$/", {"s": V(("a.b",))}, "WHERE p =~ /^(a\\.b)$/"),
    ("WHERE p =~ /^$s|x$/", {"s": V(("a.b",))}, "WHERE p =~ /^a\\.b|x$/"),
    ("SELECT v / $s FROM m WHERE a =~ /x/", {"s": V(("a.b",))},
     "SELECT v / a.b FROM m WHERE a =~ /x/"),
    ("WHERE a =~ /^$s$/ AND b = '$s'", {"s": V(("a.b",))}, "WHERE a =~ /^a\\.b$/ AND b = 'a\\.b'"),
    ('WHERE ("t"::tag =~ /value/) AND o = $s GROUP BY time($__interval) tz(\'Europe/London\')',
     {"s": V(("testmatch",))},
     'WHERE ("t"::tag =~ /value/) AND o = testmatch GROUP BY time(10s) tz(\'Europe/London\')'),
    # rule 5: All with a custom all value verbatim; without one, every option as in rule 2
    ("WHERE s =~ /^$s$/", {"s": V(SITES, multi=True, include_all=True, all_value=".*",
                                  is_all=True)}, "WHERE s =~ /^.*$/"),
    ("WHERE s =~ /^$s$/", {"s": V(("env", "env2"), include_all=True, is_all=True)},
     "WHERE s =~ /^(env|env2)$/"),
    # the three syntaxes
    ("A ${s} B [[s]] C $s", {"s": V(("x",))}, "A x B x C x"),
    ("WHERE s =~ /^${s}$/", {"s": V(("a.b",))}, "WHERE s =~ /^a\\.b$/"),
    ("$site $sites", {"site": V(("p",)), "sites": V(("q",))}, "p q"),
    # formats
    ("${s:raw}", {"s": V(("a.b", "c"), multi=True)}, "a.b,c"),
    ("${s:regex}", {"s": V(("a.b",))}, "a\\.b"),
    ("${s:pipe}", {"s": V(("a", "b"), multi=True)}, "a|b"),
    # repeated panel: the scoped single value of a multi variable is a string
    ("WHERE s =~ /^$s$/", {"s": V(("a.b",), multi=True, scoped=True)}, "WHERE s =~ /^a\\.b$/"),
    # rule 6: nothing is quoted for you; unknown names are left as written
    ("WHERE d = $d AND x = $unknown", {"d": V(("dev",))}, "WHERE d = dev AND x = $unknown"),
])
def test_variables(query: str, variables: dict[str, VariableValue], expected: str) -> None:
    assert _expand(query, variables) == expected


def test_escape_regex_backslashes_every_metacharacter() -> None:
    assert escape_regex(r"\^$*+?.()|[]{}/") == r"\\\^\$\*\+\?\.\(\)\|\[\]\{\}\/"
    assert escape_regex("东昌 site-1_a") == "东昌 site-1_a"


@pytest.mark.parametrize(("query", "interval_ms", "expected"), [
    ("WHERE $timeFilter", 10_000, f"WHERE time >= {FROM}ms and time <= {TO}ms"),
    ("GROUP BY time($__interval)", 90_000, "GROUP BY time(1m)"),
    ("GROUP BY time($interval)", 1_500, "GROUP BY time(1s)"),
    ("$__interval_ms / $__interval", 90_000, "90000 / 1m"),
    ("${__from} ${__to} $__from", 1, f"{FROM} {TO} {FROM}"),
    ("$__range $__rate_interval", 1_000, "$__range $__rate_interval"),
])
def test_builtins(query: str, interval_ms: int, expected: str) -> None:
    assert _expand(query, interval_ms=interval_ms) == expected


def test_variables_go_in_before_the_backend_macros() -> None:
    # a variable whose value holds a macro gets it replaced, as Grafana's two passes do
    assert _expand("WHERE $f", {"f": V(("$timeFilter",))}) == \
        f"WHERE time >= {FROM}ms and time <= {TO}ms"


@pytest.mark.parametrize(("ms", "text"), [
    (1, "1ms"), (500, "500ms"), (1_000, "1s"), (1_500, "1s"), (59_999, "59s"), (60_000, "1m"),
    (90_000, "1m"), (3_600_000, "1h"), (86_400_000, "1d"), (604_800_000, "7d"),
    (2_592_000_000, "30d"), (31_536_000_000, "1y"), (0, "1ms"),
])
def test_format_interval(ms: int, text: str) -> None:
    assert format_interval(ms) == text


@pytest.mark.parametrize(("raw", "rounded"), [
    (0, 1), (9.9, 1), (10, 10), (14, 10), (15, 20), (34, 20), (35, 50), (74, 50), (75, 100),
    (149, 100), (150, 200), (349, 200), (350, 500), (749, 500), (750, 1_000), (1_499, 1_000),
    (1_500, 2_000), (3_500, 5_000), (7_499, 5_000), (7_500, 10_000), (12_500, 15_000),
    (17_500, 20_000), (25_000, 30_000), (45_000, 60_000), (90_000, 120_000),
    (210_000, 300_000), (450_000, 600_000), (750_000, 900_000), (1_050_000, 1_200_000),
    (1_500_000, 1_800_000), (2_700_000, 3_600_000), (5_400_000, 7_200_000),
    (9_000_000, 10_800_000), (16_200_000, 21_600_000), (32_400_000, 43_200_000),
    (86_400_000, 86_400_000), (604_800_000, 604_800_000), (1_814_400_000, 2_592_000_000),
    (3_628_800_000, 31_536_000_000),
])
def test_round_interval(raw: float, rounded: int) -> None:
    assert round_interval(raw) == rounded


HOUR, DAY = 3_600_000, 86_400_000


@pytest.mark.parametrize(("panel", "span_ms", "ds_interval", "expected"), [
    ({}, HOUR, None, 5_000),  # 3.6e6 / 500 = 7200 -> 5s
    ({}, HOUR, "10s", 10_000),  # the data source's min interval wins
    ({"interval": "1m"}, HOUR, "10s", 60_000),  # the panel's beats the data source's
    ({"interval": ">30s"}, HOUR, None, 30_000),
    ({"maxDataPoints": 100}, HOUR, "10s", 30_000),  # 36 s -> 30s
    ({}, 7 * DAY, "10s", 1_200_000),  # 1209.6 s -> 20m
    ({"interval": ""}, DAY, None, 120_000),  # 172.8 s -> 2m
])
def test_interval_for(panel: dict[str, object], span_ms: int, ds_interval: str | None,
                      expected: int) -> None:
    assert interval_for(panel, FROM, FROM + span_ms, ds_interval) == expected


@pytest.mark.parametrize(("text", "ms"), [("10s", 10_000), ("1m", 60_000), (">5m", 300_000),
                                          ("100ms", 100), ("1h", HOUR), ("1d", DAY)])
def test_interval_to_ms(text: str, ms: int) -> None:
    assert interval_to_ms(text) == ms


def test_find_variables_names_every_syntax() -> None:
    refs = find_variables("$a ${b} ${c:regex} [[d]] [[e:csv]] $__interval $timeFilter")
    assert [(r.name, r.fmt) for r in refs] == [
        ("a", None), ("b", None), ("c", "regex"), ("d", None), ("e", "csv"),
        ("__interval", None), ("timeFilter", None)]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        _expand("${s:percentencode}", {"s": V(("x",))})
