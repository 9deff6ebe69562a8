"""The next cells (the heatmap's ◆ and the panel's "Next cells"): the line's test, walked.

The instruction line names one test (``core.plan.instruction.Instructor``: the one it
follows as it runs, else the one it names "next:"). The next cells are that test's cells
not yet trusted, in the order the line walks them, from where the line is in it: a
hold's steps in its order, MAP ramps column by column (each roll down or up), a
serpentine row by row (then its closing hold), a pull or a one-row sweep by rpm.

They were the plan's own target cells: the plan's top test's cells first (the line may
hold on to another test for its switch delay, or cool down towards it), then the best
cells of other tests. QA read "hold 1000 rpm: MAP 40 35 kPa" over ◆ at 1500/40 1500/35
1500/30, and "cool down at idle, then hold 1000 rpm" with ◆ at 4500/85.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from core.plan.candidates import Constraints
from core.plan.recipe import Recipe
from core.plan.types import Suggestion, Target

F64 = npt.NDArray[np.float64]

MAX_MARKS = 5
"""Next cells shown (the panel lists them, the heatmap marks them)."""
HOLD_TYPES = ("steady_state", "idle_low_map")
BY_RPM = -1
"""The leg of a test walked by rpm alone (a pull, a one-row sweep): from the engine's rpm."""


def walk(s: Suggestion, rpm_axis: F64, map_axis: F64) -> list[tuple[int, int, int]]:
    """(leg, map index, rpm index) of the cells ``s`` runs through, in the line's order.

    Legs number what the line walks: a hold's steps, MAP ramps' stops (lead columns,
    then ramps), a serpentine's rows and then its closing hold's steps. A pull, a
    one-row sweep and the rest are one leg (:data:`BY_RPM` for those walked by rpm).
    """
    r = s.recipe if isinstance(s.recipe, Recipe) else None
    steps = tuple(r.map_steps) if r is not None else ()

    def col(rpm: float) -> int:
        return int(np.argmin(np.abs(rpm_axis - rpm)))

    def row(kpa: float) -> int:
        return int(np.argmin(np.abs(map_axis - kpa)))

    def along_rpm(leg: int, m: int, a: float, b: float) -> list[tuple[int, int, int]]:
        c0, c1 = col(a), col(b)
        way = 1 if c1 >= c0 else -1
        return [(leg, m, c) for c in range(c0, c1 + way, way)]

    kind = s.test_type
    if kind in HOLD_TYPES:
        if r is None:
            steps = tuple(dict.fromkeys(s.map_range))
        if steps:
            c = col(s.rpm_range[0])
            return [(i, row(m), c) for i, m in enumerate(steps)]
    elif kind == "map_ramps" and r is not None and r.columns and steps:
        out = [(i, row(r.lead_kpa), col(rpm)) for i, rpm in enumerate(r.lead)]
        rows = sorted(row(m) for m in steps)
        for j, rpm in enumerate(r.columns):
            times = r.cell_times[j] if j < len(r.cell_times) else ()
            passed = [k for k, m in enumerate(rows) if len(times) != len(rows) or times[k] > 0.0]
            down = (j % 2 == 0) == (steps[0] >= max(steps))  # as ``Recipe`` rolls it
            order = passed[::-1] if down else passed
            out += [(len(r.lead) + j, rows[k], col(rpm)) for k in order]
        return out
    elif kind == "part_throttle_sweep" and r is not None and len(steps) >= 2:
        out = []
        lo, hi = r.rpm_lo, r.rpm_hi
        for i, m in enumerate(steps):
            a, b = (lo, hi) if i % 2 == 0 else (hi, lo)
            if i == len(steps) - 1:
                b = r.end_rpm
            out += along_rpm(i, row(m), a, b)
        end = col(r.end_rpm)
        out += [(len(steps) + j, row(m), end) for j, m in enumerate(r.hold_steps)]
        return out
    elif kind == "part_throttle_sweep" and r is not None and steps:
        return along_rpm(BY_RPM, row(steps[0]), r.rpm_lo, r.rpm_hi)
    elif kind == "tip_in" and len(steps) >= 2:
        c = col(s.rpm_range[0])
        a, b = row(steps[0]), row(steps[1])
        way = 1 if b >= a else -1
        return [(0, m, c) for m in range(a, b + way, way)]
    # a pull (no MAP steps: the engine's WOT row), a cruise, an idle in neutral: the
    # cells it is expected to make trusted, else to add data to, by rpm
    cells = list(s.cells) or [(m, c) for m, c, h in s.expected_hits if h >= 0.5]
    leg = BY_RPM if kind == "wot_pull" else 0
    if kind == "wot_pull":  # the pull itself, not the ride to its start nor the idle after
        lo, hi = col(s.rpm_range[0]), col(s.rpm_range[1])
        cells = [(m, c) for m, c in cells if lo <= c <= hi]
    return [(leg, m, c) for m, c in sorted(cells, key=lambda mc: (mc[1], -mc[0]))]


def line_targets(
    s: Suggestion,
    position: int | None,
    op: Mapping[str, float],
    conf: F64,
    prio: npt.NDArray[np.int64],
    rpm_axis: F64,
    map_axis: F64,
    constraints: Constraints,
    limit: int = MAX_MARKS,
) -> tuple[Target, ...]:
    """The next cells of ``s``: its cells not yet trusted, walked from ``position``.

    ``position``: the leg the line is on while it follows ``s`` as it runs (from the
    engine's rpm for a test walked by rpm), None before ``s`` starts. ``conf`` (flat):
    each cell's confidence; ``prio`` (n_map, n_rpm): its priority. Cells outside the
    constraints' window are left out, as are the rows above 100 kPa (as the plan's).
    """
    lo_r, hi_r = constraints.rpm_window(rpm_axis)
    lo_m, hi_m = constraints.map_window(map_axis)
    n_rpm = rpm_axis.size
    flat_prio = np.asarray(prio).ravel()
    out: list[Target] = []
    seen: set[tuple[int, int]] = set()
    cells = walk(s, rpm_axis, map_axis)
    if position is not None:
        cells = _ahead(cells, position, op, rpm_axis, map_axis)
    for _, m, c in cells:
        j = m * n_rpm + c
        if (m, c) in seen or not conf[j] < 1.0:
            continue
        if not (lo_r <= rpm_axis[c] <= hi_r and lo_m <= map_axis[m] <= min(hi_m, 100.0)):
            continue
        seen.add((m, c))
        out.append(
            Target(
                map_index=m,
                rpm_index=c,
                rpm=float(rpm_axis[c]),
                map_kpa=float(map_axis[m]),
                priority=int(flat_prio[j]),
                deficit=int(round(100 * (1.0 - float(conf[j])))),
            )
        )
        if len(out) >= limit:
            break
    return tuple(out)


def _ahead(
    cells: list[tuple[int, int, int]],
    position: int,
    op: Mapping[str, float],
    rpm_axis: F64,
    map_axis: F64,
) -> list[tuple[int, int, int]]:
    """``cells`` from where the line is: its leg ``position``, from the engine's cell on it.

    The legs before it are done, and so is the part of this one behind the engine (a
    roll past 75 kPa down to 50 does not go back up for 80): the line never returns there.
    """
    current = [i for i, (leg, _, _) in enumerate(cells) if leg == position]
    if not current:
        return [x for x in cells if x[0] > position]
    rpm = float(op.get("rpm", math.nan))
    map_kpa = float(op.get("map_kpa", math.nan))
    if not (math.isfinite(rpm) and math.isfinite(map_kpa)):
        return cells[current[0] :]
    m0 = int(np.argmin(np.abs(map_axis - map_kpa)))
    c0 = int(np.argmin(np.abs(rpm_axis - rpm)))
    if position == BY_RPM:  # a pull: the columns under the engine's are passed
        return [x for x in cells if x[0] != BY_RPM or x[2] >= c0]
    here = min(current, key=lambda i: (abs(cells[i][1] - m0) + abs(cells[i][2] - c0), i))
    return cells[here:]
