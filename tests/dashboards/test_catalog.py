"""The dashboards as built from the device profiles: structure, and that the profiles (not
copies of them) decide the queries, units and thresholds."""

from __future__ import annotations

import json
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.catalog import build_all
from dashboards.influxql import InfluxQLQuery
from dashboards.lint import lint_all
from device_profiles.schema import PROFILES_ROOT, Profile, ProfileSet, load_profiles

EXPECTED_TITLES = {"城市运行总览", "扬水站", "智慧灯杆", "智慧消防", "水表与水利", "设备与网关",
                   "事件中心"}


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def _panel(model: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in _panels(model) if p["title"] == title)


def _by_uid(profiles: ProfileSet | None = None) -> dict[str, dict[str, Any]]:
    return {b.uid: b.model for b in build_all(profiles)}


def test_the_seven_dashboards_each_in_its_folder() -> None:
    built = build_all()
    assert {b.title for b in built} == EXPECTED_TITLES
    assert built[0].title == "城市运行总览"
    assert len({b.uid for b in built}) == len(built)
    folders = {b.title: b.folder for b in built}
    assert folders["扬水站"] == "扬水站" and folders["智慧消防"] == "智慧消防"
    assert all("id" not in b.model for b in built)


def test_every_dashboard_parses_back_through_the_sdk_models_byte_for_byte() -> None:
    for b in build_all():
        text = json.dumps(b.model, sort_keys=True, ensure_ascii=False)
        parsed = Dashboard.from_json(json.loads(text))
        again = json.dumps(parsed, cls=JSONEncoder, sort_keys=True, ensure_ascii=False)
        assert again == text, b.uid
        targets = [t for p in parsed.panels or [] for t in getattr(p, "targets", None) or []]
        assert targets and all(isinstance(t, InfluxQLQuery) for t in targets), b.uid


def test_the_linter_finds_nothing() -> None:
    problems = lint_all(build_all())
    assert problems == [], "\n".join(str(p) for p in problems)


def test_thresholds_are_the_profile_rules_limits() -> None:
    pump = load_profiles().get("dc-pumpstation-v1")
    limits = sorted(r.raise_at for r in pump.alarms if getattr(r, "point", "") == "sump_level")
    panel = _panel(_by_uid()["dciot-pump_station"], "集水池水位")
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert sorted(s["value"] for s in steps if s["value"] is not None) == limits
    assert panel["fieldConfig"]["defaults"]["unit"] == "lengthm"


def _renamed(profiles: ProfileSet, profile_id: str, old: str, new: str, label: str
             ) -> ProfileSet:
    data = yaml.safe_load((PROFILES_ROOT / "pump_station" / f"{profile_id}.yaml").read_text())
    text = json.dumps(data, ensure_ascii=False).replace(f'"{old}"', f'"{new}"')
    data = json.loads(text)
    for point in data["points"]:
        if point["name"] == new:
            point["label_zh"] = label
    changed = Profile.model_validate(data)
    return ProfileSet({**profiles.profiles, profile_id: changed})


def test_renaming_a_point_in_a_profile_changes_the_dashboards_with_it() -> None:
    profiles = _renamed(load_profiles(), "dc-pumpstation-v1", "sump_level", "wet_well_level",
                        "集水井水位")
    model = _by_uid(profiles)["dciot-pump_station"]
    queries = [t["query"] for p in _panels(model) for t in p.get("targets", [])]
    assert not [q for q in queries if '"sump_level"' in q or '_sump_level"' in q]
    panel = _panel(model, "集水井水位")
    assert '"wet_well_level"' in panel["targets"][0]["query"]
    assert any('"mean_wet_well_level"' in t["query"] for p in _panels(model)
               for t in p.get("targets", []))


def test_alarms_annotate_the_panels_showing_their_points() -> None:
    model = _by_uid()["dciot-pump_station"]
    level = _panel(model, "集水池水位")
    annotations = [a for a in model["annotations"]["list"]
                   if level["id"] in a.get("filter", {}).get("ids", [])]
    assert len(annotations) == 1
    query = annotations[0]["target"]["query"]
    assert 'FROM "alarms"' in query and "sump_level_high" in query and "sump_level_low" in query


def test_overview_links_to_every_domain_dashboard_keeping_time_and_variables() -> None:
    models = _by_uid()
    links = models["dciot-overview"]["links"]
    targets = {link["url"].split("?")[0].removeprefix("/d/") for link in links}
    assert {"dciot-pump_station", "dciot-smart_pole", "dciot-fire", "dciot-water",
            "dciot-devices", "dciot-events"} <= targets
    assert all(link["keepTime"] and link["includeVars"] for link in links)
