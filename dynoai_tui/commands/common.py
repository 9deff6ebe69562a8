"""Shared plumbing for the commands: options, config, store, tracker, error lines.

Exit codes (a documented contract for scripts):

* 0 - done (also after SIGINT / SIGTERM / SIGHUP: data flushed, summary printed; and
  when the reader of stdout leaves early, ``dynoai sources | head -1``: see ``cli.main``)
* 1 - internal error (a bug: please report it with the traceback from ``--debug``)
* 2 - bad input: usage, unknown source URI, missing/corrupt/truncated file, bad config value
* 3 - a device or source failed (cannot open the port, adapter does not answer)
* 4 - the run ended but not everything was saved: the recording stopped early (disk
  full, USB stick pulled) or the vehicle store could not be written by the end (locked,
  disk full). The summary and one warning line each say what was not saved.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import hashlib
import math
import os
import select
import sys
import uuid
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

from core.config import ConfigError
from core.source import SourceError, SourceInputError, SourceState
from core.vehicle import VehicleConfig, resolve_config


class ExitCode(IntEnum):
    """The exit codes: a documented contract for scripts (see the module docstring)."""

    OK = 0
    INTERNAL = 1
    BAD_INPUT = 2
    DEVICE = 3
    NOT_SAVED = 4


EXIT_OK = ExitCode.OK
EXIT_INTERNAL = ExitCode.INTERNAL
EXIT_BAD_INPUT = ExitCode.BAD_INPUT
EXIT_DEVICE = ExitCode.DEVICE
EXIT_NOT_SAVED = ExitCode.NOT_SAVED


class CommandError(Exception):
    """A people-facing failure with its exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), *range(0x7F, 0xA0)]}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def printable(text: str) -> str:
    """``text`` with control characters escaped (a newline as backslash-n, ESC as x1b).

    A file name holding a newline or an escape sequence can then neither split an
    error line nor drive the terminal.
    """
    return text.translate(_CONTROL)


def error_line(message: str) -> None:
    """Print one clear error line on stderr (never a traceback)."""
    with contextlib.suppress(OSError):  # stderr gone with the SSH session: nothing left to tell
        print(f"dynoai: error: {printable(message)}", file=sys.stderr, flush=True)


def warning_line(message: str) -> None:
    """One warning line on stderr: something was wrong but the data was used."""
    with contextlib.suppress(OSError):
        print(f"dynoai: warning: {printable(message)}", file=sys.stderr, flush=True)


def stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (``dynoai sources | head -1``).

    A ``BrokenPipeError`` may also come from a socket (a JetDrive or ELM327 over TCP);
    only the reader of our own output leaving is the tuner's choice and a quiet exit.
    A flush finds it when output is still buffered; otherwise ``poll`` reports the
    error condition on a pipe that has lost its reader.
    """
    stream = sys.stdout
    if stream is None:
        return False
    try:
        stream.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False  # not a real file (a test's capture)
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # no events asked: only error and hang-up come back
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone.

    The interpreter flushes stdout at exit; the buffered rest would raise again on the
    closed pipe ("Exception ignored ... BrokenPipeError", exit 120). The recipe of the
    Python docs' "Note on SIGPIPE" (library/signal.html).
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing is flushed to a pipe at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def source_failures(sources: Any) -> list[str]:
    """What went wrong with a finished run's sources, one line each; empty when nothing did.

    A source failed when it delivered no sample in the whole run, or when it ended lost
    (``reconnecting`` / ``failed``: the port itself went away and did not come back). A
    source that ends ``stale`` after delivering data is not a failure: a wideband or an
    OBD adapter goes quiet when the tuner switches the ignition off before stopping.

    A source with no sample that is still ``connecting`` or ``connected`` when the run
    ends has not had its chance: every live driver reports ``stale`` once its own
    silence timeout passes (CI: Ctrl-C 0.2 s into a simulator run exited 3, "delivered
    no data", before the simulator's first block).
    """
    out = []
    for src in sources or ():
        why = f" ({src.message})" if src.message else ""
        if src.state == SourceState.FINISHED:
            continue
        if src.samples == 0:
            if src.state in (SourceState.CONNECTING, SourceState.CONNECTED):
                continue
            out.append(f"source {src.name} delivered no data{why}")
        elif src.state in (SourceState.RECONNECTING, SourceState.FAILED):
            out.append(f"source {src.name} was lost and did not come back{why}")
    return out


def exit_code_after(session: Any, final: Any = None) -> int:
    """One warning line per thing the finished session could not save or read; the exit code.

    4 when something was not saved (data lost comes first), else 3 when a source
    delivered nothing or was lost (:func:`source_failures`, from ``final``, the
    session's last snapshot), else 0: a script over SSH can tell a dead wideband from
    a good run (QA: a silent port and an unplugged adapter both exited 0).
    """
    lines = list(getattr(session, "not_saved", ()))
    for line in lines:
        warning_line(f"not saved: {line}")
    failures = source_failures(getattr(final, "sources", ())) if final is not None else []
    for line in failures:
        warning_line(line)
    if lines:
        return EXIT_NOT_SAVED
    return EXIT_DEVICE if failures else EXIT_OK


def report_store_damage(store: Any | None) -> None:
    """One warning line per stored run that was skipped because its row does not decode."""
    for (vehicle, run_id), why in sorted(getattr(store, "damaged", {}).items()):
        warning_line(
            f"vehicle {vehicle!r}: skipped damaged run {run_id!r} ({why}); "
            f"see dynoai vehicle check {vehicle}"
        )


def write_output_file(path: str | os.PathLike[str], data: str | bytes, what: str) -> None:
    """Create or replace the regular file ``path``; never follow a symbolic link there.

    A link at ``path`` (planted, or left over) would otherwise redirect the write onto
    whatever it points at. Every way the write can fail is one line naming the file and
    its directory (:func:`cannot_write`): ``report --out /nonexistent/x.png`` was an
    internal error after the whole log had been read.
    """
    path = os.fspath(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        if os.path.islink(path):
            raise CommandError(f"{what} {path} is a symbolic link; name a regular file")
        fd = os.open(path, flags, 0o644)
    except CommandError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            raise CommandError(f"{what} {path} is a symbolic link; name a regular file") from None
        raise cannot_write(path, what, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:  # disk full, quota, a stick pulled while writing
        raise cannot_write(path, what, exc) from None


def cannot_write(path: str | os.PathLike[str], what: str, exc: OSError) -> CommandError:
    """The one line for an output file that could not be written, naming its directory.

    The system's own words ("No such file or directory") do not say which part is
    missing: the file is about to be made, so it is the directory, or a directory that
    takes no new files (``/proc``).
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    why = exc.strerror or str(exc)
    if isinstance(exc, IsADirectoryError) or os.path.isdir(path):
        return CommandError(f"{what} {path} is a directory; name a file")
    if exc.errno == errno.ENOENT:
        if not os.path.isdir(parent):
            return CommandError(f"cannot write {what} {path}: directory {parent} does not exist")
        return CommandError(
            f"cannot write {what} {path}: directory {parent} does not take new files ({why})"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CommandError(
            f"cannot write {what} {path}: directory {parent} is not writable ({why})"
        )
    return CommandError(f"cannot write {what} {path}: {why}")


def check_output_path(path: str | os.PathLike[str] | None, what: str) -> None:
    """Fail before a run when ``path`` could not be written at its end (``write_output_file``).

    ``log --coverage-json /nonexistent/c.json`` ran its whole duration and only then
    said it could not write the file. (A directory that refuses new files for another
    reason, ``/proc``, is found at the write and said as one line there.)
    """
    if not path:
        return
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"{what} {path} is a directory; name a file")
    if not os.path.isdir(parent):
        raise CommandError(f"cannot write {what} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise CommandError(f"cannot write {what} {path}: directory {parent} is not writable")


def add_source_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        action="append",
        metavar="URI",
        help="source URI, repeat to fuse several (default: sim:); see 'dynoai sources'",
    )


def check_args(args: argparse.Namespace) -> None:
    """Refuse, in one line before anything runs, what would only fail later or never end.

    ``--vehicle`` must be a name the store takes (a tab was found only when the run was
    saved: NOT SAVED after the whole run, and ~20 s of retries at exit); ``--duration``
    and ``--seconds`` finite seconds above 0 (``nan`` logged until killed, ``inf`` was an
    internal error); ``--seed`` 0 .. 2**32 - 1 (-1 was an internal error); ``--priors``
    an existing fleet dataset.
    """
    vehicle = getattr(args, "vehicle", None)
    if isinstance(vehicle, str):
        from core.store import StoreError, check_vehicle_name

        try:
            args.vehicle = check_vehicle_name(vehicle)
        except StoreError as exc:
            raise CommandError(f"--vehicle: {exc}") from None
    for name in ("duration", "seconds"):
        value = getattr(args, name, None)
        if isinstance(value, float) and not (math.isfinite(value) and value > 0.0):
            raise CommandError(f"--{name} must be a finite number of seconds > 0, got {value:g}")
    seed = getattr(args, "seed", None)
    if isinstance(seed, int) and not 0 <= seed < 2**32:
        raise CommandError(f"--seed must be 0 .. {2**32 - 1}, got {seed}")
    priors = getattr(args, "priors", None)
    if isinstance(priors, str):
        # checked whether or not the priors will be applied: a vehicle with its own fits
        # skips them, and "--priors /nonexistent" read "fleet priors not applied", exit 0
        from core.fleet.queries import FleetError, check_dataset

        try:
            check_dataset(priors)
        except FleetError as exc:
            raise CommandError(f"--priors: {exc}") from None


def add_vehicle_options(parser: argparse.ArgumentParser, *, vehicle_required: bool = False) -> None:
    parser.add_argument(
        "--vehicle",
        required=vehicle_required,
        help="vehicle name in the store: its coverage and plan carry over between runs",
    )
    parser.add_argument("--config", metavar="FILE", help="vehicle TOML config (axes, filters, ...)")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the vehicle store lives (default: $DYNOAI_DATA_DIR or the user data directory)",
    )
    parser.add_argument(
        "--priors",
        metavar="DIR",
        help="fleet dataset (dynoai export --parquet): a new vehicle starts from its model's fill rates",
    )


def open_store(args: argparse.Namespace) -> Any:
    """The vehicle store named by --data-dir / DYNOAI_DATA_DIR / the default location."""
    from core.store import StoreError, VehicleStore

    data_dir = getattr(args, "data_dir", None)
    try:
        return VehicleStore(Path(data_dir) if data_dir else None)
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def load_vehicle(args: argparse.Namespace, store: Any | None) -> VehicleConfig:
    """Resolve the vehicle config (CLI > environment > stored TOML > defaults)."""
    vehicle = getattr(args, "vehicle", None)
    config_file = getattr(args, "config", None)
    stored = store.get_config_toml(vehicle) if (store is not None and vehicle) else None
    cfg = resolve_config(config_file=config_file, stored_toml=stored, vehicle=vehicle)
    if store is not None and vehicle and config_file:
        store.set_config_toml(vehicle, Path(config_file).read_text(encoding="utf-8"))
    priors = getattr(args, "priors", None)
    if priors and store is not None and vehicle:
        apply_priors(store, vehicle, priors)
    return cfg


def with_source_kind(
    cfg: VehicleConfig, args: argparse.Namespace, store: Any | None, sources: Sequence[Any]
) -> VehicleConfig:
    """``cfg`` planning for the engine the simulator runs, when no config names one.

    Without ``--config``, ``DYNOAI_CONFIG`` or a stored config the vehicle is the default
    V-twin, and ``dynoai log --source 'sim:car?scenario=guided'`` planned the car's tests
    with the V-twin's model: the simulated tuner ran V-twin holds on the car, and their
    checks read 27 %. A config is the user's word and is kept as it is.

    A named vehicle without a config gets one naming that engine, so ``plan``, ``ve``
    and the next session model it as this one did (the planner's learned factors are
    per model: learned on the car's and applied to the V-twin's, they would mislead).
    """
    vehicle = getattr(args, "vehicle", None)
    if (
        getattr(args, "config", None)
        or os.environ.get("DYNOAI_CONFIG")
        or (store is not None and vehicle and store.get_config_toml(vehicle))
    ):
        return cfg
    kinds = {getattr(s, "vehicle_kind", None) for s in sources} - {None}
    if len(kinds) != 1:
        return cfg
    (kind,) = kinds
    return cfg if kind == cfg.kind else adopt_kind(cfg, store, vehicle, str(kind))


def adopt_kind(
    cfg: VehicleConfig, store: Any | None, vehicle: str | None, kind: str
) -> VehicleConfig:
    """``cfg`` for engine ``kind``; a named vehicle without a config stores one naming it.

    (``with_source_kind``; a replay takes the engine of a simulator's recording.)
    """
    from core.store import StoreError

    if store is not None and vehicle and not store.get_config_toml(vehicle):
        try:
            store.set_config_toml(vehicle, f'[vehicle]\nkind = "{kind}"\n')
        except StoreError as exc:
            warning_line(f"vehicle {vehicle!r}: its engine ({kind}) was not saved: {exc}")
    return dataclasses.replace(cfg, kind=kind)


def apply_priors(store: Any, vehicle: str, location: str) -> None:
    """``--priors DIR``: seed a new vehicle's planner calibration from the fleet dataset."""
    from core.fleet.priors import seed_calibration
    from core.fleet.queries import FleetError
    from core.store import StoreError

    try:
        message = seed_calibration(store, vehicle, location)
    except (FleetError, StoreError) as exc:
        raise CommandError(f"--priors {location}: {exc}") from None
    with contextlib.suppress(OSError):
        print(f"dynoai: {message}", file=sys.stderr, flush=True)


def make_tracker(
    cfg: VehicleConfig,
    store: Any | None,
    *,
    run_id: str,
    log_path: str | None,
    part_of: str | None = None,
    segment_id: str | None = None,
) -> Any:
    """The per-vehicle tracker (pull detection, learning, live plan, store checkpoints)."""
    from core.plan.testsim import model_key
    from core.plan.tracker import VehicleTracker
    from sim.testsim import SimCandidates

    constraints = cfg.constraints
    if store is not None:
        stored = store.get_constraints(cfg.name)
        if stored is not None:
            constraints = stored
    return VehicleTracker(
        axes=cfg.axes,
        hit_target=cfg.hit_target,
        regions=cfg.regions,
        constraints=constraints,
        store=store,
        vehicle=cfg.name,
        run_id=run_id,
        log_path=log_path,
        rule=cfg.coverage_rule,
        model=SimCandidates(
            model_key(cfg, store.get_calibration(cfg.name) if store is not None else None)
        ),
        part_of=part_of,
        segment_id=segment_id,
    )


def record_header(store: Any | None, vehicle: str | None) -> dict[str, Any]:
    """Recording-header metadata carrying the vehicle's session record (core.fleet)."""
    if store is None or not vehicle:
        return {}
    from core.fleet.records_store import header_metadata
    from core.store import StoreError

    try:
        return header_metadata(store, vehicle)
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def with_dyno_sheet(tracker: Any, cfg: VehicleConfig) -> Any:
    """The tracker with a SheetTap, so the dashboard can show each pull's dyno sheet."""
    from core.dynosheet import DynoSheetBuilder, SheetTap

    return SheetTap(tracker, DynoSheetBuilder(stoich=cfg.stoich))


def new_run_id() -> str:
    return uuid.uuid4().hex


def run_identity(path: Path, metadata: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(run id, live run it is part of, segment id) of a replayed log.

    A recording made by a live session names the live run and its segment: the
    replay is stored as ``RUN:SEGMENT``, which the store knows the live run may
    already count (never replacing the whole live run with a part of it).
    """
    run_id = run_id_for_log(path, metadata.get("run_id"))
    segment = metadata.get("segment_id")
    if isinstance(segment, str) and segment and run_id == metadata.get("run_id"):
        return f"{run_id}:{segment}", run_id, segment
    return run_id, None, None


def run_id_for_log(path: Path, header_run_id: object = None) -> str:
    """A recording's run id: the one it was recorded with, else a hash of the file."""
    if isinstance(header_run_id, str) and header_run_id:
        return header_run_id
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
    digest.update(str(path.stat().st_size).encode())
    return "file-" + digest.hexdigest()[:32]


def translate_errors(exc: BaseException) -> CommandError | None:
    """Map the project's people-facing exceptions to a CommandError, else None."""
    from core.record import LogFileError
    from core.store import StoreError

    if isinstance(exc, CommandError):
        return exc
    if isinstance(exc, StoreError):
        return CommandError(str(exc), EXIT_BAD_INPUT)
    if isinstance(exc, SourceInputError):  # a missing or corrupt replay file, not a device
        return CommandError(str(exc), EXIT_BAD_INPUT)
    if isinstance(exc, SourceError):
        # Bad URIs and files are caught where sources are made (exit 2, see make_sources);
        # a SourceError that gets here came from opening or reading a device.
        return CommandError(str(exc), EXIT_DEVICE)
    if isinstance(exc, ConfigError | LogFileError):
        return CommandError(str(exc), EXIT_BAD_INPUT)
    try:
        from core.formats import LogImportError
    except ImportError:
        return None
    if isinstance(exc, LogImportError):
        return CommandError(str(exc), EXIT_BAD_INPUT)
    return None


def sources_or_default(raws: Sequence[str] | None) -> list[str]:
    return list(raws) if raws else ["sim:"]


def make_sources(raws: Sequence[str] | None) -> list[Any]:
    """Sources from URIs (default ``sim:``); a bad URI or option is bad input (exit 2)."""
    from drivers.registry import create_sources

    try:
        return create_sources(sources_or_default(raws))
    except SourceError as exc:
        raise CommandError(str(exc), EXIT_BAD_INPUT) from None
