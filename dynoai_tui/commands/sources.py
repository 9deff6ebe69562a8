"""``dynoai sources``: the serial ports and CAN interfaces here, and how to name a source."""

from __future__ import annotations

import argparse

from dynoai_tui.commands.common import EXIT_OK

NAME = "sources"
HELP = "list serial ports, CAN interfaces and the source URI forms with examples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-can", action="store_true", help="skip CAN detection (it can be slow on some systems)"
    )


def run(args: argparse.Namespace) -> int:
    from drivers.discovery import list_can_interfaces, list_serial_ports, uri_forms

    print("Serial ports:")
    ports = list_serial_ports()
    for port in ports:
        hwid = f"  [{port.hwid}]" if port.hwid and port.hwid != "n/a" else ""
        print(f"  {port.device:<24} {port.description}{hwid}")
    if not ports:
        print("  (none found: plug in the adapter; on Linux check 'dmesg | tail')")

    print("\nCAN interfaces:")
    if args.no_can:
        print("  (detection skipped)")
    else:
        configs = list_can_interfaces()
        for config in configs:
            interface = config.get("interface", "?")
            channel = config.get("channel", "?")
            print(f"  can:{interface}/{channel}")
        if not configs:
            print("  (none detected; a socketcan interface must be up: ip link set can0 up ...)")

    print("\nSource URIs (--source):")
    for form in uri_forms():
        print(f"  {form.scheme + ':':<10} {form.description}")
        print(f"  {'':<10} e.g. {form.example}")
    return EXIT_OK
