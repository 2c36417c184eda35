"""LoRaWAN 1.0.x through LoRa gateways speaking the Semtech UDP packet-forwarder protocol."""
