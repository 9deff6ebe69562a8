"""What hardware is there: serial ports, CAN interfaces, and the source URI forms.

Used by ``dynoai sources``. Detection must never fail the command: a missing
backend or a platform without auto-detection simply lists nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drivers.registry import BACKENDS, EXAMPLES

HARDWARE_CAN_INTERFACES = (
    "socketcan", "pcan", "kvaser", "vector", "ixxat", "gs_usb", "cantact", "neovi",
    "etas", "nixnet", "usb2can", "systec", "canalystii",
)  # fmt: skip
"""Interfaces worth detecting: real adapters. ``virtual`` and ``udp_multicast`` always
'exist', ``serial``/``slcan`` are the serial ports listed above, and ``socketcand``
detection waits 4 s on the network."""


@dataclass(frozen=True, slots=True)
class SerialPortInfo:
    """A serial port found on this machine (for ``dynoai sources``)."""

    device: str
    description: str
    hwid: str


@dataclass(frozen=True, slots=True)
class UriForm:
    """One source URI scheme with its description and an example."""

    scheme: str
    description: str
    example: str


def list_serial_ports() -> list[SerialPortInfo]:
    """Serial ports pyserial sees (USB adapters show VID:PID in ``hwid``), sorted by path."""
    from serial.tools import list_ports

    ports = [
        SerialPortInfo(p.device, p.description or "", p.hwid or "") for p in list_ports.comports()
    ]
    return sorted(ports, key=lambda p: p.device)


def list_can_interfaces() -> list[dict[str, object]]:
    """CAN channels python-can can open right now (``[]`` when none, never an error)."""
    try:
        import can
    except ImportError:
        return []
    # Some backends log a warning per missing vendor library; that is noise here.
    can_logger = logging.getLogger("can")
    level = can_logger.level
    can_logger.setLevel(logging.CRITICAL)
    try:
        configs = can.detect_available_configs(interfaces=list(HARDWARE_CAN_INTERFACES))
    except (OSError, ImportError, ValueError, NotImplementedError, can.CanError):
        return []
    finally:
        can_logger.setLevel(level)
    return [dict(c) for c in configs]


def uri_forms() -> list[UriForm]:
    """Every source scheme with its description and an example URI."""
    return [
        UriForm(scheme, description, EXAMPLES.get(scheme, f"{scheme}:"))
        for scheme, (_, description) in BACKENDS.items()
    ]
