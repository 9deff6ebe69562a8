"""Import real logs written by other tools and compare with what their own text says.

Most real logs found in public repositories carry no licence (or AGPL), so they
cannot be committed. ``tests/data/real_manifest.toml`` names each one by
repository, path and commit, with the SHA-256 of the text that was checked and
the expected import result, read by hand from the file's own text: duration,
sample rate, which column became which channel with which unit conversion, a
few values, what the grid will lack. This script makes that check repeatable
without redistributing the files::

    python bench/check_real_logs.py DIR            # files fetched by you, anywhere under DIR
    python bench/check_real_logs.py DIR --only HP  # entries whose tool contains "HP"

Each manifest entry is looked up under DIR by its file name (and, when it was
committed, at its place in tests/data). An entry with ``lines = N`` was checked
on the file's first N lines only (the log is longer than the excerpt that was
read); the script cuts a longer file to those lines before importing. The text
hash is taken after decoding (UTF-8 with or without BOM, UTF-16 with BOM) and
turning CRLF into LF, so a copy saved with other line endings still matches.
Files not present are skipped and said so. Exit status: 0 when nothing failed.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.formats import LogImportError, open_log  # noqa: E402

MANIFEST = ROOT / "tests" / "data" / "real_manifest.toml"
TARGET_TOOLS = 8


@dataclass
class Outcome:
    """The checks run on one file: (what, expected, measured, ok) rows."""

    entry: dict[str, Any]
    where: Path
    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(r[3] for r in self.rows)

    def add(self, what: str, expected: object, measured: object, ok: bool) -> None:
        self.rows.append((what, str(expected), str(measured), ok))


def load_manifest(path: Path = MANIFEST) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    entries: list[dict[str, Any]] = data["log"]
    return entries


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the codec that reads it back."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252"), "cp1252"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def prepared(entry: dict[str, Any], path: Path, tmp: Path) -> tuple[Path, str]:
    """The file to import (cut to the checked lines) and the hash of what it holds."""
    data = path.read_bytes()
    if "sha256_bytes" in entry:
        return path, hashlib.sha256(data).hexdigest()
    text, codec = decode(data)
    lines = int(entry.get("lines", 0))
    if lines:
        text = "".join(text.splitlines(keepends=True)[:lines])
        out = tmp / path.name
        out.write_bytes(text.encode(codec))
        return out, text_hash(text)
    return path, text_hash(text)


def _value(columns: dict[str, Any], key: str) -> float:
    """``rpm[0]``, ``rpm[-1]``, ``rpm[max]``, ``rpm[min]`` of the canonical columns."""
    name, _, index = key.partition("[")
    col = np.asarray(columns[name], dtype=np.float64)
    index = index.rstrip("]")
    if index == "max":
        return float(np.nanmax(col))
    if index == "min":
        return float(np.nanmin(col))
    return float(col[int(index)])


def check(entry: dict[str, Any], path: Path) -> Outcome:
    """Import one file and compare it with its manifest entry."""
    out = Outcome(entry, path)
    with tempfile.TemporaryDirectory() as d:
        target, digest = prepared(entry, path, Path(d))
        want_hash = str(entry.get("sha256_text") or entry.get("sha256_bytes") or "")
        out.add("sha256", want_hash[:16], digest[:16], digest == want_hash)
        try:
            log = open_log(target)
        except LogImportError as exc:
            out.error = f"import refused: {exc}"
            return out
    s = log.summary
    out.add("format", entry["format"], s.format_name, s.format_name == entry["format"])
    out.add("rows", entry["rows"], s.rows, s.rows == entry["rows"])
    tol = float(entry.get("duration_tol", 0.002))
    d_ok = math.isclose(s.duration_s, entry["duration_s"], abs_tol=tol)
    out.add("duration s", f"{entry['duration_s']} ±{tol:g}", f"{s.duration_s:.4f}", d_ok)
    rate = float(entry["rate_hz"])
    r_tol = float(entry.get("rate_tol", 0.03))
    r_ok = math.isclose(s.sample_rate_hz, rate, rel_tol=r_tol)
    out.add("rate Hz", f"{rate:g} ±{r_tol:.0%}", f"{s.sample_rate_hz:.3f}", r_ok)
    if "longest_gap_s" in entry:
        g_ok = math.isclose(s.longest_gap_s, entry["longest_gap_s"], abs_tol=tol)
        out.add("longest gap s", entry["longest_gap_s"], f"{s.longest_gap_s:.4f}", g_ok)
    if "markers" in entry:
        out.add("markers", entry["markers"], len(s.markers), len(s.markers) == entry["markers"])
    by_canon = {m.canonical: m for m in s.mapped}
    for canon, original in entry.get("channels", {}).items():
        got = by_canon[canon].original if canon in by_canon else "(not mapped)"
        out.add(f"{canon} from", original, got, got == original)
    for canon, words in entry.get("conversions", {}).items():
        got = by_canon[canon].conversion if canon in by_canon else "(not mapped)"
        out.add(f"{canon} conversion", f"~{words}", got or "(none)", words in got)
    for key, want in entry.get("values", {}).items():
        try:
            got_v = _value(log.columns, key)
        except (KeyError, IndexError, ValueError):
            out.add(key, want, "(absent)", False)
            continue
        ok = math.isclose(got_v, float(want), rel_tol=1e-3, abs_tol=1e-3)
        out.add(key, want, f"{got_v:.6g}", ok)
    for canon in entry.get("absent", []):
        out.add(
            f"{canon} absent",
            "absent",
            "mapped" if canon in log.columns else "absent",
            canon not in log.columns,
        )
    for name in entry.get("unmapped", []):
        out.add("unmapped", name, "yes" if name in s.unmapped else "no", name in s.unmapped)
    for words in entry.get("lacks", []):
        hit = next((x for x in s.lacks if words in x), "")
        out.add("grid lacks", words, hit or "(not said)", bool(hit))
    for words in entry.get("not_lacks", []):
        hit = next((x for x in s.lacks if words in x), "")
        out.add("grid has", words, hit or "(not lacking)", not hit)
    return out


def find(entry: dict[str, Any], root: Path | None) -> Iterator[Path]:
    """The copies of an entry's file: its committed place, then any under ``root``."""
    seen: set[Path] = set()
    if entry.get("committed"):
        p = (ROOT / entry["committed"]).resolve()
        if p.is_file():
            seen.add(p)
            yield p
    if root is not None:
        for p in sorted(root.rglob(entry["file"])):
            if p.is_file() and p.resolve() not in seen:
                seen.add(p.resolve())
                yield p


def report(outcome: Outcome) -> str:
    e = outcome.entry
    head = f"{'PASS' if outcome.ok else 'FAIL'}  {e['tool']}: {outcome.where}"
    lines = [head, f"      {e['repo']} {e['path']} @ {e['commit'][:7]} ({e['licence']})"]
    if outcome.error:
        lines.append(f"      {outcome.error}")
    for what, want, got, ok in outcome.rows:
        lines.append(f"  {'ok ' if ok else 'BAD'} {what:<26} expected {want:<28} measured {got}")
    return "\n".join(lines)


def run(root: Path | None, only: str = "", manifest: Path = MANIFEST) -> tuple[int, int, str]:
    """Check every entry found; returns (failures, tools passing, the printed report)."""
    out: list[str] = []
    failures = 0
    tools_ok: dict[str, bool] = {}
    for entry in load_manifest(manifest):
        if only and only.lower() not in entry["tool"].lower():
            continue
        copies = list(find(entry, root))
        if not copies:
            out.append(
                f"SKIP  {entry['tool']}: {entry['file']} not present (fetch "
                f"{entry['repo']} {entry['path']} @ {entry['commit'][:7]})"
            )
            continue
        for p in copies:
            o = check(entry, p)
            failures += not o.ok
            tools_ok[entry["tool_family"]] = tools_ok.get(entry["tool_family"], True) and o.ok
            out.append(report(o))
    passing = sum(tools_ok.values())
    out.append(
        f"\ntools with a real log that imports right: {passing} "
        f"({', '.join(t for t, ok in tools_ok.items() if ok) or '-'}); target {TARGET_TOOLS}"
    )
    if failures:
        out.append(f"{failures} file(s) FAILED")
    return failures, passing, "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "dir", nargs="?", type=Path, help="where fetched real logs are (searched recursively)"
    )
    ap.add_argument("--only", default="", help="check only entries whose tool contains this")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    args = ap.parse_args(argv)
    if args.dir is not None and not args.dir.is_dir():
        print(f"check_real_logs: error: {args.dir}: not a directory", file=sys.stderr)
        return 2
    failures, _, text = run(args.dir, args.only, args.manifest)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
