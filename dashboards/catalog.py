"""Every dashboard we ship, built from the device profiles: what `dciot dashboards build/push`
and the tests work on."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from dashboards import devices, events, fire, overview, pump_station, smart_pole, water
from device_profiles.schema import PROFILES_ROOT, ProfileSet, load_profiles

DATASOURCE_UID = "influxdb-dciot"
DATASOURCE_NAME = "InfluxDB 数字东昌"


@dataclass(frozen=True)
class BuiltDashboard:
    """One dashboard's JSON model and the folder it is filed in."""

    uid: str
    title: str
    folder: str
    """folder title (Chinese), one per domain"""
    folder_uid: str
    model: dict[str, object]
    """the dashboard JSON (Grafana's dashboard model, `id` unset)"""


FOLDERS = {"city": ("城市运行", "dciot-city"), "pump_station": ("扬水站", "dciot-pump-station"),
           "smart_pole": ("智慧灯杆", "dciot-smart-pole"), "fire": ("智慧消防", "dciot-fire"),
           "water": ("水表与水利", "dciot-water"), "platform": ("平台运维", "dciot-platform")}
"""One folder per domain (title, uid); the city-wide boards and the platform's own."""

MODULES: list[tuple[ModuleType, str]] = [
    (overview, "city"), (events, "city"), (pump_station, "pump_station"),
    (smart_pole, "smart_pole"), (fire, "fire"), (water, "water"), (devices, "platform")]


def build_all(profiles: ProfileSet | None = None) -> list[BuiltDashboard]:
    """All dashboards, overview first, built from the device profiles."""
    profiles = profiles or load_profiles(PROFILES_ROOT)
    built: list[BuiltDashboard] = []
    for module, folder in MODULES:
        model = module.build(profiles).model()
        title, folder_uid = FOLDERS[folder]
        built.append(BuiltDashboard(str(model["uid"]), str(model["title"]), title, folder_uid,
                                    model))
    return built
