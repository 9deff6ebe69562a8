"""File paths as a toast shows them: the name whole on its line, the folder on the next.

A toast wraps its text at spaces, and a path has none: at 80 x 24 a 40-column toast
broke ``/tmp/qa1/ve-demo-20261201-080437-cha`` / ``nge-pct.csv`` in the middle of
the name the tuner has to find. The name is what changes from file to file, so it
keeps its own line; the folder goes under it, the home directory as ``~`` and its
middle left out when it would not fit.
"""

from __future__ import annotations

from pathlib import Path

FOLDER_WIDTH = 40
"""Characters of ``in FOLDER``: within a dashboard toast's text width at 80 columns (45)."""


def folder_text(folder: Path, width: int = FOLDER_WIDTH - 3) -> str:
    """``folder`` with ``~`` for home, its middle cut to ``…`` when longer than ``width``."""
    try:
        text = str(Path("~") / folder.relative_to(Path.home()))
    except ValueError:
        text = str(folder)
    if len(text) <= width:
        return text
    head = "~/…" if text.startswith("~") else "…"
    parts = Path(text).parts
    tail = parts[-1]
    for part in reversed(parts[1:-1]):
        if len(f"{head}/{part}/{tail}") > width:
            break
        tail = f"{part}/{tail}"
    return f"{head}/{tail}"


def toast_path(path: str | Path) -> str:
    """``name`` and, on the next line, ``in folder``."""
    p = Path(path).expanduser().absolute()
    return f"{p.name}\nin {folder_text(p.parent)}"
