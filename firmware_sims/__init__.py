"""Device simulators that speak the real wire protocols, laid out as the device profiles say.

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

Field-protocol simulators on the real medium (each with an async API and fault injection):

    rtu_bus.py         Modbus RTU units on an RS-485 bus (pty), bytes paced at the baud rate
    cjt188_meter.py    CJ/T 188 water meters on a meter bus (pty)
    gbt26875_uitd.py   a GB/T 26875.3 user information transmission device (TCP client)
    lorawan_gateway.py LoRa gateways (Semtech UDP) carrying encrypted LoRaWAN uplinks

Nothing outside tests and the CLI imports this package (see /work/shared/style.md).
"""
