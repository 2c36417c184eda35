"""The simulated slice of the district the demo runs: sites, simulators, gateways, cloud.

Pure: builds the config documents (the same YAML a real deployment writes by hand or from the
registry), so the demo exercises exactly the code paths production does.

    poles 1-10   -> Modbus gateway (sim) :P1, units 1..10 -> edge gw-dongchang-rd (东昌路 古楼街道)
    poles 11-20  -> Modbus gateway (sim) :P2, units 1..10 -> edge gw-liuyuan-rd   (柳园路 柳园街道)
    pump station -> station PLC (sim)    :Pn, unit 1      -> edge gw-pump-NN        (N号扬水站)
    fire site    -> UITD (sim) --TCP--> gbt26875 listener :Pf  -> edge gw-fire-01  (东昌湖综合楼)
                    RS-485 pty (sim, Modbus RTU) <- polled by the same edge
    water site   -> RS-485 pty (sim, CJ/T 188) <- polled by edge gw-water-01   (柳园小区)
                    2 LoRa gateways (sim) --UDP--> semtech_udp listener :Pw of the same edge

Every site is in a town (街道) and every device has a place (WGS84) in Dongchangfu, Liaocheng
(around 36.45 N, 115.98 E): poles spaced along their street, sites at distinct places.

The pseudo-terminals are reached through symlinks under `tty_dir` that the simulators make;
the edge configs name them as `serial_port`. LoRaWAN session keys are fixed demo keys derived
from the device id (never printed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

POLE_PROFILE = "dc-smartpole-v1"
PUMP_PROFILE = "dc-pumpstation-v1"
SMOKE_PROFILE = "dc-smokedetector-v1"
LORA_WATER_PROFILE = "dc-lorawan-watermeter-v1"
POLES_PER_GATEWAY = 10
STREETS = [("dongchang-rd", "东昌路"), ("liuyuan-rd", "柳园路"), ("guangyue-rd", "光岳路"),
           ("xinhua-rd", "新华路"), ("huixin-rd", "卫育路")]
STREET_PLACES = {
    # slug: (town, first pole (lat, lon), step to the next pole (dlat, dlon): about 30 m)
    "dongchang-rd": ("古楼街道", (36.4560, 115.9650), (0.0, 0.00034)),
    "liuyuan-rd": ("柳园街道", (36.4420, 115.9700), (0.00027, 0.0)),
    "guangyue-rd": ("新区街道", (36.4620, 115.9900), (0.0, 0.00034)),
    "xinhua-rd": ("湖西街道", (36.4400, 115.9550), (0.0, 0.00034)),
    "huixin-rd": ("东城街道", (36.4480, 116.0000), (0.00027, 0.0)),
}
PUMP_TOWNS = ["东城街道", "新区街道", "湖西街道"]
FIRE_PLACE = ("古楼街道", (36.4530, 115.9780))
WATER_PLACE = ("柳园街道", (36.4470, 115.9740))
UITD_ADDRESS = "000000000379"
LORA_GATEWAYS = ["aa555a0000000001", "aa555a0000000002"]
RTU_LINE = {"baudrate": 9600, "parity": "N", "stopbits": 2}
"""A pty takes no parity (Linux refuses PARENB): 8N2 has the 11-bit character of 8E1."""


@dataclass
class SimDevice:
    device_id: str
    name: str
    profile: str
    port: int = 0
    unit: int = 1
    params: dict[str, object] = field(default_factory=dict)
    """The edge config's `params` (protocols other than Modbus TCP)."""
    sim_key: str = ""
    """How the simulators' control API names it; default "<port>:<unit>"."""
    interval_s: float | None = None
    """Pushed devices: how often they report; None: polled at the demo's interval."""
    lat: float | None = None
    lon: float | None = None

    @property
    def key(self) -> str:
        return self.sim_key or f"{self.port}:{self.unit}"


@dataclass
class Site:
    gateway_id: str
    site: str
    town: str = ""
    devices: list[SimDevice] = field(default_factory=list)
    listeners: list[dict[str, object]] = field(default_factory=list)
    sims: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    """Sections of the simulator config this site's field devices need (rtu_buses, ...)."""


@dataclass(frozen=True)
class Ports:
    mqtt: int
    influx: int
    sim_control: int
    cloud_metrics: int
    sim_servers: list[int]
    fire_listener: int
    water_listener: int


def plan_district(poles: int, pump_stations: int, sim_ports: list[int]) -> list[Site]:
    """Group the Modbus TCP devices into sites; `sim_ports` needs one port per site."""
    sites: list[Site] = []
    pole_sites = -(-poles // POLES_PER_GATEWAY)
    if len(sim_ports) < pole_sites + pump_stations:
        raise ValueError("not enough simulator ports for the sites")
    ports = iter(sim_ports)
    for s in range(pole_sites):
        slug, street = STREETS[s % len(STREETS)]
        town, (lat0, lon0), (dlat, dlon) = STREET_PLACES[slug]
        site = Site(f"gw-{slug}" + (f"-{s // len(STREETS) + 1}" if s >= len(STREETS) else ""),
                    street, town)
        port = next(ports)
        first = s * POLES_PER_GATEWAY
        along = (s // len(STREETS)) * POLES_PER_GATEWAY  # a street's later sites continue it
        for unit, n in enumerate(range(first + 1, min(poles, first + POLES_PER_GATEWAY) + 1), 1):
            k = along + unit - 1
            site.devices.append(SimDevice(f"pole-{n:03d}", f"{street}{n}号灯杆", POLE_PROFILE,
                                          port, unit, lat=round(lat0 + k * dlat, 6),
                                          lon=round(lon0 + k * dlon, 6)))
        sites.append(site)
    for n in range(1, pump_stations + 1):
        site = Site(f"gw-pump-{n:02d}", f"{n}号扬水站", PUMP_TOWNS[(n - 1) % len(PUMP_TOWNS)])
        site.devices.append(SimDevice(f"pump-station-{n:02d}", f"{n}号扬水站", PUMP_PROFILE,
                                      next(ports), 1, lat=round(36.4350 + 0.0030 * n, 6),
                                      lon=round(115.9800 + 0.0060 * n, 6)))
        sites.append(site)
    return sites


def _place_devices(site: Site, lat: float, lon: float) -> None:
    """Devices of one building or estate: a few metres apart, so map markers do not overlap."""
    for i, device in enumerate(site.devices):
        device.lat = round(lat + (i // 4) * 0.00005, 6)
        device.lon = round(lon + (i % 4) * 0.00006, 6)


def sites_needed(poles: int, pump_stations: int) -> int:
    return -(-poles // POLES_PER_GATEWAY) + pump_stations


def plan_fire_site(listen_port: int, tty_dir: Path, push_interval_s: float) -> Site:
    """A building: a UITD reporting smoke detectors and the hydrant main to the edge's gbt26875
    listener, and fire sensors on an RS-485 Modbus RTU bus the same edge polls."""
    site = Site("gw-fire-01", "东昌湖综合楼", FIRE_PLACE[0])
    components: list[dict[str, object]] = []
    for floor in range(1, 4):
        address = (floor << 16) | 2  # area 2 (3号楼), position = floor
        site.devices.append(SimDevice(
            f"smoke-3-{floor}01", f"3号楼{floor}层01室烟感", SMOKE_PROFILE,
            params={"uitd_address": UITD_ADDRESS, "system_type": 1, "system_address": 1,
                    "component_type": 42, "component_address": address},
            sim_key=f"uitd-fire:{address}", interval_s=push_interval_s))
        components.append({"profile": SMOKE_PROFILE, "system_type": 1, "system_address": 1,
                           "component_type": 42, "component_address": address})
    site.devices.append(SimDevice(
        "hydrant-3-main", "3号楼消火栓管网", "dc-hydrant-pressure-v1",
        params={"uitd_address": UITD_ADDRESS, "system_type": 11, "system_address": 1,
                "component_type": 0, "component_address": 7},
        sim_key="uitd-fire:7", interval_s=push_interval_s))
    components.append({"profile": "dc-hydrant-pressure-v1", "system_type": 11,
                       "system_address": 1, "component_type": 0, "component_address": 7,
                       "initial": {"pipe_pressure": 0.35}})
    site.listeners.append({"kind": "gbt26875", "host": "127.0.0.1", "port": listen_port})
    site.sims["uitds"] = [{"name": "uitd-fire", "host": "127.0.0.1", "port": listen_port,
                           "address": UITD_ADDRESS, "interval_s": push_interval_s,
                           "retry_s": 0.5, "components": components}]
    link = str(tty_dir / "rtu-fire")
    units = [
        (1, "efm-b1-01", "B1配电室电气火灾探测器", "dc-elecfire-v1", {
            "residual_current": 42, "cable_temp_1": 31.5, "cable_temp_2": 33.0,
            "cable_temp_3": 29.8, "cable_temp_4": 30.2}),
        (2, "hydrant-dcl-03", "东昌路3号消火栓", "generic-pt485-hydrant", {
            "pressure_unit_code": 0, "decimal_places": 3, "pressure": 0.352}),
        (3, "gas-b1-01", "地下车库可燃气体探测器", "crowcon-xgardiq", {
            "gas_concentration": 1.5, "sensor_status": 0}),
    ]
    for unit, device_id, name, profile, _initial in units:
        site.devices.append(SimDevice(device_id, name, profile, unit=unit,
                                      params={"serial_port": link, **RTU_LINE, "unit": unit},
                                      sim_key=f"rtu-fire:{unit}"))
    site.sims["rtu_buses"] = [{"name": "rtu-fire", "link": link, **RTU_LINE, "units": [
        {"unit": unit, "profile": profile, "initial": initial}
        for unit, _d, _n, profile, initial in units]}]
    _place_devices(site, *FIRE_PLACE[1])
    return site


def plan_water_site(listen_port: int, tty_dir: Path, push_interval_s: float,
                    meters: int = 4, lora_meters: int = 4, lora_smoke: int = 2) -> Site:
    """A housing estate: CJ/T 188 meters on an RS-485 bus the edge polls, and LoRaWAN water
    meters and smoke alarms heard by two LoRa gateways pushing to the same edge."""
    site = Site("gw-water-01", "柳园小区", WATER_PLACE[0])
    link = str(tty_dir / "cjt188-water")
    bus: list[dict[str, object]] = []
    for n in range(1, meters + 1):
        address = f"783301000001{n:02d}"
        site.devices.append(SimDevice(
            f"wm-1-1{n:02d}", f"柳园小区1号楼1{n:02d}室", "dc-watermeter-cjt188-v1",
            params={"serial_port": link, "address": address, "parity": "N"}))
        bus.append({"address": address, "profile": "dc-watermeter-cjt188-v1",
                    "cumulative_m3": round(80 + 37.25 * n, 2), "flow_m3_per_h": 0.2 * n})
    site.sims["cjt188_buses"] = [{"name": "cjt188-water", "link": link, "meters": bus}]
    lora: list[dict[str, object]] = []
    plan = [(f"lwm-{n:04d}", f"柳园小区{n}号楼单元总表", LORA_WATER_PROFILE, 0x26011B00 + n)
            for n in range(1, lora_meters + 1)]
    plan += [(f"lsmoke-{n:04d}", f"柳园小区{n}号商铺烟感", "dc-lorawan-smoke-v1", 0x26011C00 + n)
             for n in range(1, lora_smoke + 1)]
    for device_id, name, profile, dev_addr in plan:
        keys = demo_session_keys(device_id)
        site.devices.append(SimDevice(
            device_id, name, profile, params={"dev_addr": f"{dev_addr:08X}", **keys},
            sim_key=f"lora-water:{dev_addr:08X}", interval_s=push_interval_s))
        lora.append({"profile": profile, "dev_addr": f"{dev_addr:08X}", **keys,
                     "interval_s": push_interval_s})
    site.listeners.append({"kind": "semtech_udp", "host": "127.0.0.1", "port": listen_port,
                           "gateways": LORA_GATEWAYS})
    site.sims["lorawan"] = [{"name": "lora-water", "host": "127.0.0.1", "port": listen_port,
                             "gateways": LORA_GATEWAYS, "devices": lora}]
    _place_devices(site, *WATER_PLACE[1])
    return site


def demo_session_keys(device_id: str) -> dict[str, str]:
    """Fixed ABP session keys of a demo device (hex), the same on every run."""
    return {name: hashlib.sha256(f"dciot-demo/{device_id}/{name}".encode()).hexdigest()[:32]
            for name in ("nwk_s_key", "app_s_key")}


def sim_config(sites: list[Site], control_port: int, time_scale: float,
               start_time: str) -> dict[str, object]:
    servers: dict[int, list[dict[str, object]]] = {}
    devices = [d for site in sites for d in site.devices if d.port]
    for seed, d in enumerate(devices, 1):
        servers.setdefault(d.port, []).append({"unit": d.unit, "profile": d.profile, "seed": seed})
    sections: dict[str, list[dict[str, object]]] = {}
    for site in sites:
        for section, entries in site.sims.items():
            sections.setdefault(section, []).extend(entries)
    return {
        "time_scale": time_scale,
        "start_time": start_time,
        "control": {"host": "127.0.0.1", "port": control_port},
        "servers": [{"host": "127.0.0.1", "port": p, "units": u} for p, u in servers.items()],
        **sections,
    }


def gateway_config(site: Site, mqtt_port: int, interval_s: float,
                   tls: dict[str, str] | None = None,
                   stats_interval_s: float = 2.0) -> dict[str, object]:
    """One edge agent's config; its poll and reject counters every `stats_interval_s` (short,
    so a short run shows them moving)."""
    devices: list[dict[str, object]] = []
    for d in site.devices:
        entry: dict[str, object] = {"id": d.device_id, "name": d.name, "profile": d.profile}
        if d.port:
            entry.update(host="127.0.0.1", port=d.port, unit=d.unit)
        else:
            entry["params"] = d.params
        if d.interval_s is None:
            entry["interval_s"] = interval_s
        devices.append(entry)
    document: dict[str, object] = {
        "gateway_id": site.gateway_id,
        "site": site.site,
        "broker": {"host": "127.0.0.1", "port": mqtt_port, **({"tls": tls} if tls else {})},
        "devices": devices,
        "stats_interval_s": stats_interval_s,
    }
    if site.listeners:
        document["listeners"] = site.listeners
    return document


def cloud_config(sites: list[Site], ports: Ports, database: str, interval_s: float,
                 tls: dict[str, str] | None = None,
                 health_interval_s: float = 2.0) -> dict[str, object]:
    """The demo's cloud: every device with its site, town and place; health points every
    `health_interval_s` (short, so a short run has them)."""
    broker: dict[str, object] = {"host": "127.0.0.1", "port": ports.mqtt,
                                 "client_id": "dciot-ingest-demo"}
    if tls:
        broker.update(tls_cafile=tls["cafile"], tls_certfile=tls["certfile"],
                      tls_keyfile=tls["keyfile"])
    return {
        "broker": broker,
        "influx": {"url": f"http://127.0.0.1:{ports.influx}", "api": "v1", "database": database},
        "metrics": {"host": "127.0.0.1", "port": ports.cloud_metrics},
        "health_interval_s": health_interval_s,
        "devices": [
            {"id": d.device_id, "gateway": s.gateway_id, "profile": d.profile, "name": d.name,
             "site": s.site, "interval_s": d.interval_s or interval_s,
             **({"town": s.town} if s.town else {}),
             **({"lat": d.lat, "lon": d.lon} if d.lat is not None and d.lon is not None else {})}
            for s in sites for d in s.devices
        ],
    }
