"""Tunes: the ECU's VE and target tables, read from and written back to tuner files."""

from __future__ import annotations

from pathlib import Path

from core.tune.msq import msq_bytes, parse_msq, read_msq, render_msq, write_msq
from core.tune.paste import parse_table_text, paste_block, read_table_file, table_text
from core.tune.table import Table, Tune, TuneError


def read_tune(path: str | Path) -> Tune:
    """A tune from a ``.msq`` or a text file holding a table copied with its axes.

    The format is decided by content (an XML ``<msq`` document or not), not the name.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(512)
    except FileNotFoundError:
        raise TuneError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise TuneError(f"{p}: is a directory, not a tune file") from None
    except OSError as exc:
        raise TuneError(f"{p}: cannot read ({exc.strerror})") from None
    if head.lstrip().startswith(b"<") or b"<msq" in head:
        return read_msq(p)
    return read_table_file(p)


__all__ = [
    "Table",
    "Tune",
    "TuneError",
    "msq_bytes",
    "parse_msq",
    "parse_table_text",
    "paste_block",
    "read_msq",
    "read_table_file",
    "read_tune",
    "render_msq",
    "table_text",
    "write_msq",
]
