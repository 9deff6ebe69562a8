"""``dynoai fleet coverage|fill-rates|patterns|priors DIR``: questions over a fleet dataset.

DIR is a dataset written by ``dynoai export --parquet`` (a local folder, or an
``s3://`` / ``gs://`` / ``https://`` URL that DuckDB reads with its httpfs
extension). Queries run in-process with DuckDB; ``--json`` prints rows as JSON.
``priors`` shows the fill-rate priors a new vehicle of ``--model`` would start with
(``--priors DIR`` on run/log/plan applies them).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dynoai_tui.commands.common import EXIT_OK, CommandError

NAME = "fleet"
HELP = "query a fleet dataset with DuckDB: coverage per model, fill rates, patterns, priors"
QUERIES = ("coverage", "fill-rates", "patterns", "priors")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", choices=QUERIES, help="what to ask")
    parser.add_argument("dataset", metavar="DIR", help="dataset folder or object-store URL")
    parser.add_argument("--model", help="only this model (as in the sessions' model column)")
    parser.add_argument(
        "--kind",
        help="patterns: ve_change, knock_cell, heat_soak, decel_lean or imbalance (default: all)",
    )
    parser.add_argument("--by-model", action="store_true", help="fill-rates: one row per model")
    parser.add_argument("--json", action="store_true", help="rows as JSON")


def run(args: argparse.Namespace) -> int:
    from core.fleet import queries as q

    try:
        db = q.connect(args.dataset)
        if args.query == "priors":
            priors = q.priors(db, args.model)
            sys.stdout.write(
                json.dumps(priors, indent=2, sort_keys=True) + "\n"
                if args.json
                else render_priors(priors) + "\n"
            )
            return EXIT_OK
        results: list[tuple[str, tuple[list[str], list[tuple[Any, ...]]]]] = []
        if args.query == "coverage":
            results.append(("cumulative coverage per model", q.coverage(db, args.model)))
        elif args.query == "fill-rates":
            results.append(("fill rate (actual / predicted hits) per test type",
                            q.fill_rates(db, args.model, args.by_model)))  # fmt: skip
        else:
            kinds = [args.kind] if args.kind else list(q.PATTERN_KINDS)
            for kind in kinds:
                if kind not in q.PATTERN_KINDS:
                    raise CommandError(
                        f"--kind {kind!r} is not a pattern; use one of: {', '.join(q.PATTERN_KINDS)}"
                    )
                results.append((kind, q.patterns(db, kind, args.model)))
    except q.FleetError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        out = {title: [dict(zip(cols, row, strict=True)) for row in rows]
               for title, (cols, rows) in results}  # fmt: skip
        sys.stdout.write(json.dumps(out if len(out) > 1 else next(iter(out.values())),
                                    indent=1, default=str) + "\n")  # fmt: skip
        return EXIT_OK
    for title, (cols, rows) in results:
        sys.stdout.write(f"{title}:\n{render_table(cols, rows)}\n\n")
    return EXIT_OK


def render_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "  (no rows)"
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_priors(p: dict[str, Any]) -> str:
    scope = p["model"] or "the whole fleet"
    note = ""
    if p["asked_model"] and p["model"] is None:
        note = f" (no sessions of {p['asked_model']!r}: the whole fleet instead)"
    lines = [f"priors from {scope}{note}: {p['sessions']} session(s) of {p['vehicles']} vehicle(s)"]
    for kind, f in sorted(p["fits"].items()):
        lines.append(f"  {kind:<20} fill rate {f['actual'] / f['model']:.3f}  "
                     f"lead {f['lead_s']:.2f} s  ({f['tests']} tests)")  # fmt: skip
    if p["sample_rate_hz"]:
        lines.append(f"  sample rate {p['sample_rate_hz']:.1f} rows/s")
    if p["wot_map_kpa"]:
        lines.append(f"  WOT MAP {p['wot_map_kpa']:.1f} kPa")
    lines.append(f"  cells the model never reaches: {len(p['misses'])}")
    return "\n".join(lines)
