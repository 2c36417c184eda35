"""Dashboard query time: the overview and a one-year pump-station view over synthetic history,
raw data against the downsampled policies.

Starts its own influxd on a free loopback port, creates the database and applies the retention
policies and continuous queries (`cloud_broker.ingest.retention`; raw is kept --days + 2 days
here so the one-year raw comparison has data, which gives the raw policy 7-day shards where the
default 30-day raw gets 1-day shards). Writes synthetic history (benchmarks/synthetic_history.py)
for --devices devices over the real profiles: pump stations for --days, everything else and the
health, alarm-summary and event-centre series for --overview-days, one point per --step
seconds, in batches of --batch lines (HTTP, precision=ms). Then times `backfill` over the whole
span (what the continuous queries would have produced), and for each dashboard and range runs
every query Grafana would send (variables All, expanded by `dashboards.verify`: variable,
panel and annotation queries) --repeat times, reporting the count, the serial total and the
slowest query (medians). Raw vs downsampled: the pump station's queries on rp_1h/rp_1m (the
long-range 集水池水位长期趋势 panel among them) against the same query on the raw points, and
the overview's device_health queries (数据完整率 among them) against the same on rp_1h.

    .venv/bin/python benchmarks/dashboard_queries.py                 # 200 devices
    .venv/bin/python benchmarks/dashboard_queries.py --devices 40 --days 20 --overview-days 7

At the issue's scale (200 devices: 20 pump stations for a year, 180 other devices for 30
days) the backfill aggregates only what the timed dashboards read — pump_station and
device_health into rp_1h over the whole span and into rp_1m over the last --overview-days — in
--backfill-workers windows at once: InfluxDB 1.6 aggregates only about 1-3 k rows/s with
`mean/min/max/last(*)`, so `--backfill-all` (every measurement, both policies, the whole span)
spends most of an hour there. Production never pays that at once: the continuous queries
aggregate each minute as it closes.

Prints one JSON document on stdout and a table on stderr. Bounded: refuses more than
--max-points points; gives up after --timeout seconds (checked between write batches and
phases, and each request's own timeout); only 127.0.0.1. influxd is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic_history import Grid, HistoryWriter, estimate_points, fleet
from cloud_broker.config import InfluxConfig, RetentionConfig
from cloud_broker.ingest.retention import HttpInfluxQL, apply_retention, backfill
from dashboards.catalog import build_all
from dashboards.verify import InfluxEndpoint, Selection, parse_time, verify
from dciot.runtime import InfluxServer
from device_profiles.schema import load_profiles

DB = "dciot"
OVERVIEW_UID = "dciot-overview"
PUMP_UID = "dciot-pump_station"
MAX_IN_FLIGHT = 4
BACKFILL_WINDOW_DAYS = 7


class BenchTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class Query:
    where: str
    """`#id 标题`, `变量 name` or `注释 name`"""
    text: str
    problem: str | None

    @property
    def kind(self) -> str:
        return ("variable" if self.where.startswith("变量") else
                "annotation" if self.where.startswith("注释") else "panel")


def _check_deadline(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise BenchTimeout(f"--timeout reached during {what}")


def write_history(client: httpx.Client, url: str, writer: HistoryWriter, batch: int,
                  deadline: float) -> dict[str, Any]:
    """Generate and POST the history in batches of `batch` lines, MAX_IN_FLIGHT at a time."""
    generate_s = 0.0
    batches = 0

    def post(body: bytes) -> None:
        resp = client.post(f"{url}/write", params={"db": DB, "precision": "ms"}, content=body)
        if resp.status_code != 204:
            raise RuntimeError(f"write: HTTP {resp.status_code}: {resp.text[:300]}")

    started = time.monotonic()
    pending: list[Future[None]] = []
    buffer: list[str] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        def flush() -> None:
            nonlocal batches, buffer
            while len(pending) >= MAX_IN_FLIGHT:
                pending.pop(0).result()
            pending.append(pool.submit(post, "\n".join(buffer).encode()))
            batches += 1
            buffer = []

        chunks = writer.chunks()
        while True:
            t = time.monotonic()
            chunk = next(chunks, None)
            generate_s += time.monotonic() - t
            if chunk is None:
                break
            for line in chunk:
                buffer.append(line)
                if len(buffer) >= batch:
                    flush()
                    _check_deadline(deadline, "the write")
        if buffer:
            flush()
        for f in pending:
            f.result()
    wall = time.monotonic() - started
    total = sum(writer.history.points.values())
    return {"points": total, "by_measurement": dict(writer.history.points.most_common()),
            "batches": batches, "batch_lines": batch, "seconds": round(wall, 2),
            "generate_seconds": round(generate_s, 2),
            "points_per_second": round(total / wall) if wall else None}


TIMED_MEASUREMENTS = ("pump_station", "device_health")
"""The raw measurements the timed dashboards read through rp_1h/rp_1m."""


def parallel_backfill(ql: HttpInfluxQL, start_ms: int, end_ms: int, workers: int,
                      measurements: Collection[str] | None = None,
                      policies: Collection[str] | None = None) -> int:
    """`backfill` over [start_ms, end_ms) in whole-day windows, `workers` at a time (one
    query runs on about one core; InfluxDB serves the windows side by side)."""
    day = 86_400_000
    edges = list(range(start_ms - start_ms % day, end_ms, BACKFILL_WINDOW_DAYS * day))
    windows = [(a, min(a + BACKFILL_WINDOW_DAYS * day, end_ms)) for a in edges]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return sum(pool.map(lambda w: backfill(ql, DB, w[0], w[1], measurements, policies),
                            windows))


def collect_queries(model: dict[str, Any], endpoint: InfluxEndpoint, from_ms: int, to_ms: int,
                    timeout_s: float) -> list[Query]:
    """Every query Grafana sends when the dashboard loads with every variable at All."""
    report = verify([model], endpoint, from_ms, to_ms, Selection(), timeout_s=timeout_s)
    return [Query(r.where if r.ref_id in ("A", "-", "Anno") else f"{r.where} {r.ref_id}",
                  r.query, r.problem) for r in report.results]


def timed_get(client: httpx.Client, url: str, query: str) -> tuple[float, dict[str, Any]]:
    """Seconds for one query as Grafana sends it (GET, epoch=ms), body read and parsed."""
    started = time.perf_counter()
    resp = client.get(f"{url}/query", params={"db": DB, "epoch": "ms", "q": query})
    body: dict[str, Any] = resp.json()
    elapsed = time.perf_counter() - started
    errors = [body.get("error")] + [s.get("error") for s in body.get("results", [])]
    if resp.status_code != 200 or any(errors):
        raise RuntimeError(f"query failed ({resp.status_code}): {errors} {query[:200]}")
    return elapsed, body


def median_seconds(client: httpx.Client, url: str, query: str, repeat: int) -> float:
    return statistics.median(timed_get(client, url, query)[0] for _ in range(repeat))


def time_dashboard(client: httpx.Client, url: str, queries: Sequence[Query],
                   repeat: int) -> dict[str, Any]:
    """Each query `repeat` times in turn (as one dashboard load after another)."""
    runs = [[timed_get(client, url, q.text)[0] for q in queries] for _ in range(repeat)]
    per_query = [statistics.median(run[i] for run in runs) for i in range(len(queries))]
    slowest = sorted(range(len(queries)), key=lambda i: -per_query[i])
    return {
        "queries": len(queries),
        "by_kind": dict(Counter(q.kind for q in queries)),
        "total_ms": round(statistics.median(sum(run) for run in runs) * 1000, 1),
        "slowest_ms": round(per_query[slowest[0]] * 1000, 1) if queries else None,
        "slowest": [{"where": queries[i].where, "ms": round(per_query[i] * 1000, 1)}
                    for i in slowest[:3]],
        "without_data": sorted({q.where for q in queries if q.problem}),
    }


_ROLLUP_FIELD = re.compile(r'"(?:mean|min|max|last)_(\w+)"')
_RAW_CALL = re.compile(r'\b(mean|min|max|last)\("(\w+)"\)')


def to_raw(query: str) -> str:
    """A query on rp_1h/rp_1m rewritten to read the raw points: `"rp_1h"."pump_station"` →
    `"pump_station"`, `"mean_x"`/`"max_x"`/`"last_x"` → `"x"`."""
    return _ROLLUP_FIELD.sub(r'"\1"', re.sub(r'"rp_1[mh]"\.', "", query))


def to_hourly(query: str) -> str:
    """A device_health query rewritten to read rp_1h: `mean("online")` → `mean("mean_online")`
    (min, max, last alike)."""
    return _RAW_CALL.sub(r'\1("\1_\2")', query.replace('FROM "device_health"',
                                                        'FROM "rp_1h"."device_health"'))


def _single_row_values(body: dict[str, Any]) -> dict[str, list[Any]] | None:
    """Series tags → the row's values, when every series has exactly one row."""
    out: dict[str, list[Any]] = {}
    for statement in body.get("results", []):
        for s in statement.get("series", []):
            if len(s.get("values", [])) != 1:
                return None
            out[json.dumps(s.get("tags", {}), sort_keys=True)] = s["values"][0][1:]
    return out


def max_difference(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """Largest difference of the numbers two single-row results share (None: not comparable)."""
    va, vb = _single_row_values(a), _single_row_values(b)
    if not va or not vb or va.keys() != vb.keys():
        return None
    diffs = [abs(x - y) for k in va for x, y in zip(va[k], vb[k], strict=False)
             if isinstance(x, int | float) and isinstance(y, int | float)
             and not isinstance(x, bool)]
    return round(max(diffs), 4) if diffs else None


def compare(client: httpx.Client, url: str, queries: Iterable[Query], rewrite: Callable[[str], str],
            dashboard_reads: str, repeat: int) -> list[dict[str, Any]]:
    """Each query as the dashboard has it (reading `dashboard_reads`: raw or downsampled)
    against its rewrite reading the other; median milliseconds of `repeat` runs."""
    rows = []
    for q in queries:
        other = rewrite(q.text)
        if other == q.text:
            continue
        as_is = median_seconds(client, url, q.text, repeat) * 1000
        rewritten = median_seconds(client, url, other, repeat) * 1000
        raw_ms, down_ms = (as_is, rewritten) if dashboard_reads == "raw" else (rewritten, as_is)
        _, body_a = timed_get(client, url, q.text)
        _, body_b = timed_get(client, url, other)
        rows.append({"where": q.where, "dashboard_reads": dashboard_reads,
                     "raw_ms": round(raw_ms, 1), "downsampled_ms": round(down_ms, 1),
                     "raw_over_downsampled": round(raw_ms / down_ms, 1) if down_ms else None,
                     "max_value_difference": max_difference(body_a, body_b),
                     "query": q.text, "rewritten": other})
    return rows


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    deadline = time.monotonic() + args.timeout
    profiles = load_profiles()
    devices = fleet(profiles, args.devices)
    grid = Grid.make(int(time.time() * 1000), args.step, args.days, args.overview_days)
    estimate = estimate_points(devices, grid)
    if estimate > args.max_points:
        raise SystemExit(f"about {estimate} points is more than --max-points {args.max_points}; "
                         "lower --devices/--days or raise --step")
    params = {k: getattr(args, k) for k in ("devices", "days", "overview_days", "step",
                                            "repeat", "batch")}
    params["devices_by_profile"] = dict(Counter(d.profile.id for d in devices))
    boards = {b.uid: b.model for b in build_all(profiles)}
    influx = InfluxServer(workdir / "influxdb")
    influx.start()
    try:
        url = influx.url
        influx.create_database(DB)
        ql = HttpInfluxQL(InfluxConfig(url=url, database=DB, timeout_s=args.timeout))
        minute = f"{max(365, int(args.days) + 2)}d"
        retention = RetentionConfig(raw=f"{int(args.days) + 2}d", minute=minute)
        apply_retention(ql, DB, retention)
        params["retention"] = {"raw": retention.raw, "minute": retention.minute,
                               "hour": retention.hour}
        client = httpx.Client(timeout=args.timeout, trust_env=False)
        try:
            written = write_history(client, url, HistoryWriter(devices, grid), args.batch,
                                    deadline)
            print(f"wrote {written['points']} points in {written['seconds']} s",
                  file=sys.stderr)
            _check_deadline(deadline, "the write")
            started = time.monotonic()
            end = grid.end_ms + grid.step_ms
            if args.backfill_all:
                rolled = parallel_backfill(ql, grid.start_ms, end, args.backfill_workers)
            else:  # what the timed dashboards read: hourly for the span, 1-min for a month
                rolled = parallel_backfill(ql, grid.start_ms, end, args.backfill_workers,
                                           TIMED_MEASUREMENTS, ("rp_1h",))
                rolled += parallel_backfill(
                    ql, end - int(args.overview_days * 86_400_000), end,
                    args.backfill_workers, TIMED_MEASUREMENTS, ("rp_1m",))
            backfill_s = time.monotonic() - started
            print(f"backfill: {rolled} points in {backfill_s:.1f} s", file=sys.stderr)
            endpoint = InfluxEndpoint(url, DB)
            dashboards: dict[str, dict[str, Any]] = {}
            comparisons: dict[str, list[dict[str, Any]]] = {}
            for uid, ranges in ((OVERVIEW_UID, args.overview_ranges.split(",")),
                                (PUMP_UID, args.pump_ranges.split(","))):
                for text in ranges:
                    _check_deadline(deadline, "the queries")
                    to_ms = int(time.time() * 1000)
                    queries = collect_queries(boards[uid], endpoint, parse_time(text, to_ms),
                                              to_ms, args.timeout)
                    dashboards.setdefault(uid, {})[text] = time_dashboard(
                        client, url, queries, args.repeat)
                    if uid == PUMP_UID and text == args.pump_ranges.split(",")[-1]:
                        comparisons[f"{uid} {text}"] = compare(
                            client, url, [q for q in queries if '"rp_1' in q.text], to_raw,
                            "downsampled", args.repeat)
                    if uid == OVERVIEW_UID and text == args.overview_ranges.split(",")[-1]:
                        comparisons[f"{uid} {text}"] = compare(
                            client, url, [q for q in queries if q.kind == "panel"
                                          and 'FROM "device_health"' in q.text], to_hourly,
                            "raw", args.repeat)
        finally:
            client.close()
        return {"parameters": params, "estimated_points": estimate, "write": written,
                "backfill": {"seconds": round(backfill_s, 2), "points_written": rolled,
                             "workers": args.backfill_workers},
                "dashboards": dashboards, "raw_vs_downsampled": comparisons}
    finally:
        influx.stop()


def print_table(result: dict[str, Any]) -> None:
    w, b = result["write"], result["backfill"]
    lines = [f"write    {w['points']:>10} points  {w['seconds']:>8} s  "
             f"({w['points_per_second']} points/s, generating {w['generate_seconds']} s)",
             f"backfill {b['points_written']:>10} points  {b['seconds']:>8} s", "",
             f"{'dashboard':<22}{'range':<10}{'queries':>8}{'total ms':>11}{'slowest ms':>12}"
             "  slowest"]
    for uid, ranges in result["dashboards"].items():
        for text, r in ranges.items():
            worst = r["slowest"][0]["where"] if r["slowest"] else ""
            lines.append(f"{uid:<22}{text:<10}{r['queries']:>8}{r['total_ms']:>11}"
                         f"{r['slowest_ms']:>12}  {worst}")
    for key, rows in result["raw_vs_downsampled"].items():
        lines += ["", f"{key}: raw vs downsampled (ms)"]
        for row in rows:
            lines.append(f"  {row['where']:<28} raw {row['raw_ms']:>9}  downsampled "
                         f"{row['downsampled_ms']:>8}  ×{row['raw_over_downsampled']}")
    print("\n".join(lines), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--backfill-all", action="store_true",
                        help="aggregate every measurement and the whole span into both "
                             "policies (slow: see above)")
    parser.add_argument("--days", type=float, default=365.0,
                        help="history of the pump stations (days)")
    parser.add_argument("--overview-days", type=float, default=30.0,
                        help="history of the other devices and the health series (days)")
    parser.add_argument("--step", type=int, default=600, help="seconds between points")
    parser.add_argument("--batch", type=int, default=5000, help="lines per write")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backfill-workers", type=int, default=2,
                        help="backfill windows run at once")
    parser.add_argument("--overview-ranges", default="now-24h,now-7d,now-30d")
    parser.add_argument("--pump-ranges", default="now-1y")
    parser.add_argument("--max-points", type=int, default=20_000_000)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds at most")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dciot-bench-") as tmp:
        result = run(args, Path(tmp))
    print_table(result)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
