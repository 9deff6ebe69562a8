"""Source URIs and the lazy registry that turns them into sources.

A source is named by a URI such as ``sim:vtwin?scenario=pulls&seed=7``,
``innovate:/dev/ttyUSB0`` or ``can:socketcan/can0?dbc=bike.dbc``. The table
below maps each scheme to ``"module:factory"`` and imports the module only when
that scheme is used (the python-can BACKENDS pattern), so naming the simulator
never imports pyserial or python-can, and the headless path never imports textual.
A factory is called as ``factory(uri, name)`` and returns a ``core.source.Source``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from urllib.parse import parse_qsl

from core.source import Source, SourceError, SourceURI

BACKENDS: dict[str, tuple[str, str]] = {
    "sim": ("sim.source:SimSource", "built-in engine + dyno simulator"),
    "replay": ("core.record.replay:ReplaySource", "replay a recorded .dynolog or an imported log"),
    "innovate": (
        "drivers.innovate:InnovateSource",
        "Innovate MTS wideband (LC-1/LC-2/LM-2), 19200 8N1",
    ),
    "aem": ("drivers.aem:AemSerialSource", "AEM UEGO / X-Series serial ASCII, 9600 8N1"),
    "elm327": ("drivers.elm327:Elm327Source", "ELM327 OBD-II adapter (serial/USB/pty)"),
    "speeduino": (
        "drivers.speeduino:SpeeduinoSource",
        "Speeduino ECU serial, 115200 (ini chosen by the firmware's signature)",
    ),
    "ts": (
        "drivers.tunerstudio:TunerStudioSource",
        "any TunerStudio ECU (Speeduino, rusEFI, MegaSquirt 2/3) decoded from its own ini",
    ),
    "can": (
        "drivers.can_source:CanSource",
        "any python-can bus, DBC decoding (presets: dbc=haltech, ecumaster_emu, "
        "link_generic_dash, aem_xseries) / AEM X-Series frame",
    ),
    "obd-can": (
        "drivers.obd_can:ObdCanSource",
        "OBD-II over CAN (ISO-TP 0x7DF/0x7E8, 29-bit 0x18DB33F1/0x18DAF1xx)",
    ),
    "jetdrive": ("drivers.jetdrive:JetDriveSource", "Dynojet JetDrive channel stream over UDP"),
}
"""scheme -> ("module:factory", one-line description)."""

EXAMPLES: dict[str, str] = {
    "sim": "sim:vtwin?scenario=pulls&seed=7&rate=100",
    "replay": "replay:run.dynolog?speed=4",
    "innovate": "innovate:/dev/ttyUSB0",
    "aem": "aem:/dev/ttyUSB0?baud=9600&mode=afr",
    "elm327": "elm327:/dev/ttyUSB1?baud=38400",
    "speeduino": "speeduino:/dev/ttyACM0",
    "ts": "ts:/dev/ttyACM0?ini=mainController.ini",
    "can": "can:socketcan/can0?dbc=haltech",
    "obd-can": "obd-can:slcan/dev/ttyACM0?bitrate=500000",
    "jetdrive": "jetdrive:127.0.0.1:22344",
}


COMMON_OPTIONS = frozenset({"name"})
"""Options every source takes (``name=`` labels it in the session and the log)."""

OPTIONS: dict[str, frozenset[str]] = {
    "innovate": frozenset({"baud", "stoich"}),
    "aem": frozenset({"baud", "mode", "stoich"}),
    "elm327": frozenset({"baud", "protocol", "pids", "multi", "repeat", "stoich"}),
    "speeduino": frozenset(
        {"ini", "baud", "protocol", "set", "unset", "check", "can_id", "stoich"}
    ),
    "ts": frozenset({"ini", "baud", "protocol", "set", "unset", "check", "can_id", "stoich"}),
    "jetdrive": frozenset({"units", "peer", "iface", "stoich", "stale", "host"}),
}
"""scheme -> the options its driver reads. A misspelt option (``stoch=14.7``) would
otherwise be ignored in silence and the tuner would trust a default he meant to change.
``sim:`` checks its own; ``can:`` and ``obd-can:`` pass options they do not know on to
python-can's bus (``rx_queue_size``, ``tty_baudrate`` ...), so they are not listed."""


def check_options(uri: SourceURI) -> None:
    """Refuse an option the scheme's driver does not read (one line naming the known ones)."""
    known = OPTIONS.get(uri.scheme)
    if known is None:
        return
    unknown = sorted(set(uri.params) - known - COMMON_OPTIONS)
    if unknown:
        names = ", ".join(sorted(known | COMMON_OPTIONS))
        raise SourceError(
            f"{uri.raw}: unknown option {unknown[0]!r}; {uri.scheme}: options are: {names}"
        )


def parse_uri(raw: str) -> SourceURI:
    """Split a source URI; raises :class:`SourceError` for an unknown or malformed one."""
    scheme, sep, rest = raw.partition(":")
    scheme = scheme.strip().lower()
    if not sep or not scheme:
        raise SourceError(
            f"source {raw!r} is not a URI like 'sim:' or 'innovate:/dev/ttyUSB0' "
            "(run 'dynoai sources' for the forms)"
        )
    if scheme not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise SourceError(f"unknown source type {scheme!r} in {raw!r}; known types: {known}")
    path, _, query = rest.partition("?")
    try:
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise SourceError(f"source {raw!r}: cannot read the options after '?'") from None
    return SourceURI(raw, scheme, path, params)


def _factory(scheme: str) -> Callable[[SourceURI, str], Source]:
    target, _ = BACKENDS[scheme]
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SourceError(f"source type {scheme!r} is not available: {exc}") from None
    factory: Callable[[SourceURI, str], Source] = getattr(module, attr)
    return factory


def create_source(raw: str, name: str | None = None) -> Source:
    """Make (but do not open) the source a URI names."""
    uri = parse_uri(raw)
    check_options(uri)
    return _factory(uri.scheme)(uri, name or uri.params.get("name") or uri.scheme)


def create_sources(raws: list[str]) -> list[Source]:
    """Make several sources with unique names (``innovate``, ``innovate2`` ...)."""
    sources: list[Source] = []
    used: set[str] = set()
    for raw in raws:
        uri = parse_uri(raw)
        check_options(uri)
        base = uri.params.get("name") or uri.scheme
        name, n = base, 2
        while name in used:
            name, n = f"{base}{n}", n + 1
        used.add(name)
        sources.append(_factory(uri.scheme)(uri, name))
    return sources
