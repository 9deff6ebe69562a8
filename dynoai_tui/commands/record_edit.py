"""``dynoai vehicle edit V`` / ``dynoai vehicle show V``: the vehicle's session record.

``edit`` opens the record as TOML in ``$VISUAL`` / ``$EDITOR`` (``vi`` if neither
is set), validates it when the editor closes and saves it to the vehicle store;
new recordings of the vehicle carry it in their header. A bad value is one error
line naming the key. Nothing typed is lost: on a TTY the editor reopens on the
same file; otherwise the file is kept and the error says how to retry with
``--from FILE`` (which also serves scripts).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from dynoai_tui.commands.common import EXIT_OK, CommandError


def edit(store: Any, name: str, args: argparse.Namespace) -> int:
    from core.fleet.record import RecordError, SessionRecord, parse_toml, to_toml
    from core.fleet.records_store import get_record, set_record

    current = get_record(store, name) if store.has_vehicle(name) else None
    source = getattr(args, "from_file", None)
    if source:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read the record file {path}: {exc}") from None
        try:
            record = parse_toml(text, str(path))
        except RecordError as exc:
            raise CommandError(str(exc)) from None
    else:
        fd, tmp = tempfile.mkstemp(prefix=f"dynoai-record-{_safe(name)}-", suffix=".toml")
        path = Path(tmp)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(to_toml(current or SessionRecord()))
        while True:
            _run_editor(path)
            try:
                record = parse_toml(path.read_text(encoding="utf-8"), f"record of {name!r}")
                break
            except RecordError as exc:
                if sys.stdin.isatty() and _ask(f"{exc}\nedit again? [Y/n] "):
                    continue
                raise CommandError(
                    f"{exc}; nothing saved, your edit is kept in {path}: fix it and run "
                    f"dynoai vehicle edit {shlex.quote(name)} --from {path}"
                ) from None
        path.unlink(missing_ok=True)
    if current is not None and record == current:
        sys.stdout.write(f"vehicle {name}: session record unchanged\n")
        return EXIT_OK
    set_record(store, name, record)
    filled, total = _counts(record)
    sys.stdout.write(
        f"vehicle {name}: session record saved ({filled} of {total} fields recorded); "
        "new recordings carry it in their header\n"
    )
    return EXIT_OK


def show(store: Any, name: str, args: argparse.Namespace) -> int:
    import json

    from core.fleet.record import to_toml
    from core.fleet.records_store import get_record, get_ve_tables

    if not store.has_vehicle(name):
        known = store.list_vehicles()
        hint = f" (known: {', '.join(known)})" if known else " (the store has no vehicles yet)"
        raise CommandError(f"unknown vehicle {name!r}{hint}")
    record = get_record(store, name)
    runs = store.list_runs(name)
    ve_runs = get_ve_tables(store, name)
    if getattr(args, "json", False):
        out = {
            "vehicle": name,
            "record": None if record is None else record.to_dict(),
            "missing": None if record is None else record.missing(),
            "runs": len(runs),
            "runs_with_ve_tables": len(ve_runs),
        }
        sys.stdout.write(json.dumps(out, indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    lines = [f"vehicle {name}: {len(runs)} run(s)"]
    if record is None:
        lines.append(f"no session record yet: dynoai vehicle edit {shlex.quote(name)}")
    else:
        filled, total = _counts(record)
        lines.append(
            f"session record: {filled} of {total} fields recorded, model {record.build.model_key()!r}"
        )
        overlap = record.build.cam.overlap_deg()
        if overlap is not None and record.build.cam.overlap_front_deg is None:
            lines.append(f"cam overlap (derived from durations and LSA): {overlap:.1f} deg")
        lines.append("")
        lines.append(to_toml(record, template=False).rstrip())
        missing = record.missing()
        if missing:
            lines.append("")
            lines.append("not recorded: " + ", ".join(missing))
    lines.append(
        f"VE tables before/after: {len(ve_runs)} of {len(runs)} run(s)"
        + ("" if ve_runs else " (not recorded: they come from dynoai ve)")
    )
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


def _counts(record: Any) -> tuple[int, int]:
    from dataclasses import fields

    def count(obj: Any) -> tuple[int, int]:
        filled = total = 0
        for f in fields(obj):
            value = getattr(obj, f.name)
            if hasattr(value, "__dataclass_fields__"):
                a, b = count(value)
                filled, total = filled + a, total + b
            else:
                total += 1
                filled += value is not None
        return filled, total

    return count(record)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40]


def _run_editor(path: Path) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    argv = [*shlex.split(editor), str(path)]
    try:
        done = subprocess.run(argv, check=False)
    except OSError as exc:
        raise CommandError(
            f"cannot start the editor {editor!r} ({exc.strerror or exc}); set $EDITOR, "
            f"or edit {path} yourself and pass it with --from"
        ) from None
    if done.returncode != 0:
        raise CommandError(
            f"the editor {editor!r} exited with status {done.returncode}; nothing saved "
            f"(the file is kept in {path}: pass it with --from)"
        )


def _ask(prompt: str) -> bool:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("", "y", "yes")
