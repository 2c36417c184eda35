"""The simulated slice of the district the demo runs: sites, simulators, gateways, cloud.

Pure: builds the config documents (the same YAML a real deployment writes by hand or from the
registry), so the demo exercises exactly the code paths production does.

    poles 1-10   -> Modbus gateway (sim) :P1, units 1..10 -> edge gw-dongchang-rd   (东昌路)
    poles 11-20  -> Modbus gateway (sim) :P2, units 1..10 -> edge gw-liuyuan-rd     (柳园路)
    pump station -> station PLC (sim)    :Pn, unit 1      -> edge gw-pump-NN        (N号扬水站)
"""

from __future__ import annotations

from dataclasses import dataclass, field

POLE_PROFILE = "dc-smartpole-v1"
PUMP_PROFILE = "dc-pumpstation-v1"
POLES_PER_GATEWAY = 10
STREETS = [("dongchang-rd", "东昌路"), ("liuyuan-rd", "柳园路"), ("guangyue-rd", "光岳路"),
           ("xinhua-rd", "新华路"), ("huixin-rd", "卫育路")]


@dataclass
class SimDevice:
    device_id: str
    name: str
    profile: str
    port: int
    unit: int


@dataclass
class Site:
    gateway_id: str
    site: str
    devices: list[SimDevice] = field(default_factory=list)


@dataclass(frozen=True)
class Ports:
    mqtt: int
    influx: int
    sim_control: int
    cloud_metrics: int
    sim_servers: list[int]


def plan_district(poles: int, pump_stations: int, sim_ports: list[int]) -> list[Site]:
    """Group devices into sites; `sim_ports` needs one port per site."""
    sites: list[Site] = []
    pole_sites = -(-poles // POLES_PER_GATEWAY)
    if len(sim_ports) < pole_sites + pump_stations:
        raise ValueError("not enough simulator ports for the sites")
    ports = iter(sim_ports)
    for s in range(pole_sites):
        slug, street = STREETS[s % len(STREETS)]
        site = Site(f"gw-{slug}" + (f"-{s // len(STREETS) + 1}" if s >= len(STREETS) else ""),
                    street)
        port = next(ports)
        first = s * POLES_PER_GATEWAY
        for unit, n in enumerate(range(first + 1, min(poles, first + POLES_PER_GATEWAY) + 1), 1):
            site.devices.append(SimDevice(f"pole-{n:03d}", f"{street}{n}号灯杆", POLE_PROFILE,
                                          port, unit))
        sites.append(site)
    for n in range(1, pump_stations + 1):
        site = Site(f"gw-pump-{n:02d}", f"{n}号扬水站")
        site.devices.append(SimDevice(f"pump-station-{n:02d}", f"{n}号扬水站", PUMP_PROFILE,
                                      next(ports), 1))
        sites.append(site)
    return sites


def sites_needed(poles: int, pump_stations: int) -> int:
    return -(-poles // POLES_PER_GATEWAY) + pump_stations


def sim_config(sites: list[Site], control_port: int, time_scale: float,
               start_time: str) -> dict[str, object]:
    servers: dict[int, list[dict[str, object]]] = {}
    devices = [d for site in sites for d in site.devices]
    for seed, d in enumerate(devices, 1):
        servers.setdefault(d.port, []).append({"unit": d.unit, "profile": d.profile, "seed": seed})
    return {
        "time_scale": time_scale,
        "start_time": start_time,
        "control": {"host": "127.0.0.1", "port": control_port},
        "servers": [{"host": "127.0.0.1", "port": p, "units": u} for p, u in servers.items()],
    }


def gateway_config(site: Site, mqtt_port: int, interval_s: float) -> dict[str, object]:
    return {
        "gateway_id": site.gateway_id,
        "site": site.site,
        "broker": {"host": "127.0.0.1", "port": mqtt_port},
        "devices": [
            {"id": d.device_id, "name": d.name, "profile": d.profile, "host": "127.0.0.1",
             "port": d.port, "unit": d.unit, "interval_s": interval_s}
            for d in site.devices
        ],
    }


def cloud_config(sites: list[Site], ports: Ports, database: str,
                 interval_s: float) -> dict[str, object]:
    return {
        "broker": {"host": "127.0.0.1", "port": ports.mqtt, "client_id": "dciot-ingest-demo"},
        "influx": {"url": f"http://127.0.0.1:{ports.influx}", "api": "v1", "database": database},
        "metrics": {"host": "127.0.0.1", "port": ports.cloud_metrics},
        "devices": [
            {"id": d.device_id, "gateway": s.gateway_id, "profile": d.profile, "name": d.name,
             "site": s.site, "interval_s": interval_s}
            for s in sites for d in s.devices
        ],
    }
