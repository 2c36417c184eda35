"""Modbus TCP device simulators laid out exactly as the device profiles say.

    config.py         SimConfig (YAML) -> which units of which profile on which port
    errors.py         exception tree
    clock.py          simulated clock (real monotonic time * time_scale + start)
    physics.py        daily patterns and noise shared by the device models
    device.py         DeviceModel: values by point name, forces, client writes
    pump_station.py   smart_pole.py   one model per profile domain
    models.py         registry: profile domain -> model class
    modbus_server.py  one pymodbus server per port, many unit ids, muting
    simulation.py     every simulated unit, stepping and fault injection
    control.py        loopback HTTP/JSON control API and its urllib client
    runner.py         run_simulators(): servers + control + physics loop

Nothing outside tests and the CLI imports this package (see /work/shared/style.md).
"""
