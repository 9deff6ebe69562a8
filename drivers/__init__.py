"""Live hardware sources (serial and CAN), loaded lazily through drivers.registry by URI scheme."""
