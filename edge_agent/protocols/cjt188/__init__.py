"""CJ/T 188 water, heat and gas meters on an RS-485 / M-Bus serial bus (see README.md)."""
