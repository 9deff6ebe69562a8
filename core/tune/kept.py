"""A vehicle's base tune, kept beside the vehicle store.

``dynoai vehicle set-tune V FILE`` copies the tune file, byte for byte, to
``<data dir>/tunes/<vehicle>/base.<ext>`` and makes its VE axes the vehicle's grid
axes (the ``[axes]`` table of the stored config). Keeping the *file* rather than the
parsed tables is what lets ``dynoai ve`` write a corrected ``.msq`` that still loads
into the customer's TunerStudio project, with every other setting untouched.

Decision: a file beside the SQLite store instead of a blob in it, so the store's
schema (shared by runs, coverage, calibration) does not change for this, and the
kept tune is an ordinary file a tuner can open. The copy is atomic (temp + rename).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from core.coverage.axes import TableAxes
from core.tune import Tune, TuneError, read_tune

_SECTION = re.compile(r"^\s*\[+\s*([A-Za-z0-9_.-]+)\s*\]+\s*(#.*)?$")


_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


def tune_dir(data_dir: Path, vehicle: str) -> Path:
    """The vehicle's tune folder; names that are not safe as a folder name are hashed."""
    name = vehicle.strip()
    if not _SAFE_NAME.fullmatch(name):
        name = "v-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:16]
    return Path(data_dir) / "tunes" / name


def kept_tune_path(data_dir: Path, vehicle: str) -> Path | None:
    folder = tune_dir(data_dir, vehicle)
    if not folder.is_dir():
        return None
    found = sorted(folder.glob("base.*"))
    return found[0] if found else None


def keep_tune(data_dir: Path, vehicle: str, source: str | Path) -> tuple[Tune, Path]:
    """Validate ``source`` as a tune and copy it into the vehicle's tune folder."""
    tune = read_tune(source)
    data = Path(source).read_bytes()
    folder = tune_dir(data_dir, vehicle)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ".msq" if tune.kind == "msq" else ".txt"
        dest = folder / f"base{suffix}"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".base-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        for other in folder.glob("base.*"):
            if other != dest:
                other.unlink()
    except OSError as exc:
        raise TuneError(f"cannot keep the tune in {folder}: {exc.strerror or exc}") from None
    return tune, dest


def kept_tune(data_dir: Path, vehicle: str) -> Tune | None:
    path = kept_tune_path(data_dir, vehicle)
    return None if path is None else read_tune(path)


def with_axes_toml(stored_toml: str | None, axes: TableAxes) -> str:
    """The stored config text with its ``[axes]`` table replaced by ``axes``."""
    lines = (stored_toml or "").splitlines()
    out: list[str] = []
    skipping = False
    for line in lines:
        m = _SECTION.match(line)
        if m is not None:
            skipping = m.group(1) == "axes"
        if not skipping:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    rpm = ", ".join(f"{v:g}" for v in axes.rpm)
    map_kpa = ", ".join(f"{v:g}" for v in axes.map_kpa)
    block = [
        "[axes]  # from the vehicle's tune (dynoai vehicle set-tune)",
        f"rpm = [{rpm}]",
        f"map_kpa = [{map_kpa}]",
    ]
    return "\n".join([*out, "", *block] if out else block) + "\n"


__all__ = ["keep_tune", "kept_tune", "kept_tune_path", "tune_dir", "with_axes_toml"]
