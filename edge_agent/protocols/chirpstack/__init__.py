"""LoRaWAN uplinks from an existing ChirpStack v4 network server (MQTT integration)."""
