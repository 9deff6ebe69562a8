"""Strip chart of the last 30 s: vertical eighth-block bars, drawn line by line.

The history arrives as numpy arrays; one ``np.bincount`` per frame averages them
into one bucket per terminal column, and the bars are quantised to eighths of a
line, so the chart costs a few microseconds and repaints only when a bar moved.
An optional reference series (the AFR target) colours each column lean / rich /
on target like the AFR gauge.

A chart with ``fixed=True`` keeps its scale: a reading above it draws only a ``▲`` in
the top line, one below it a ``▼`` in the bottom line. The AFR strip is fixed to the
mixtures a tuner reads: a scale widened to fuel cut's 25.0 squashed every WOT pull
into two eighths of one line, and idle and fuel cut filled the strip solid.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
from rich.segment import Segment
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

F64 = npt.NDArray[np.float64]
BARS = " ▁▂▃▄▅▆▇█"
LABEL_W = 12
ABOVE, BELOW = "▲", "▼"
"""Marks of a fixed-scale column whose reading is off the top / bottom of the scale."""
OVER, UNDER = -1, -2
"""Heights standing for a column above / below a fixed scale."""
CLIPPED = 3
"""Colour state of such a column (0 bar, 1 lean, 2 rich: the reference's verdicts)."""


def bucket_means(t_abs_s: F64, values: F64, bucket_s: float, last_bucket: int, n: int) -> F64:
    """Mean of ``values`` per ``bucket_s`` time bucket, the ``n`` buckets ending at ``last_bucket``.

    Buckets are fixed in absolute time (bucket k covers [k, k+1) x bucket_s), so as
    time passes old bars keep their height and only the newest one changes until
    the next bucket starts: most frames repaint one column, not the whole chart.
    Empty buckets and NaN values give NaN.
    """
    out = np.full(n, np.nan)
    if n <= 0 or t_abs_s.size == 0:
        return out
    idx = np.floor(t_abs_s / bucket_s).astype(np.int64) - (last_bucket - n + 1)
    ok = np.isfinite(values) & (idx >= 0) & (idx < n)
    sums = np.bincount(idx[ok], weights=values[ok], minlength=n)
    counts = np.bincount(idx[ok], minlength=n)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


class StripChart(Widget, can_focus=False):
    """A labelled bar chart of one channel over the last ``window_s`` seconds."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "stripchart--bar",
        "stripchart--lean",
        "stripchart--rich",
        "stripchart--label",
        "stripchart--clip",
    }

    def __init__(
        self,
        label: str,
        unit: str,
        *,
        lo: float,
        hi: float,
        decimals: int = 0,
        window_s: float = 30.0,
        fixed: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.label = label
        self.unit = unit
        self.lo = lo
        """Value at the bottom of the chart (the scale widens to fit the data unless fixed)."""
        self.hi = hi
        self.fixed = fixed
        """Keep ``lo``-``hi``; readings outside are marked at the edge, not scaled in."""
        self.decimals = decimals
        self.window_s = window_s
        self._heights: tuple[int, ...] = ()
        self._states: tuple[int, ...] = ()
        self._latest = "--"
        self._scale = (lo, hi)

    def update_series(
        self, now_t: float, t_rel_s: F64, values: F64, reference: F64 | None = None
    ) -> None:
        """Take the history arrays from the snapshot; repaint only the columns that changed."""
        n = max(0, self.size.width - LABEL_W - self.styles.padding.left)
        rows = max(1, self.size.height)
        bucket_s = self.window_s / max(n, 1)
        t_abs = t_rel_s + now_t
        last_bucket = int(np.floor(now_t / bucket_s)) if np.isfinite(now_t) else 0
        means = bucket_means(t_abs, values, bucket_s, last_bucket, n)
        finite = means[np.isfinite(means)]
        lo, hi = self.lo, self.hi
        if finite.size and not self.fixed:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        span = hi - lo if hi > lo else 1.0
        eighths = np.where(
            np.isfinite(means), np.clip((means - lo) / span * rows * 8, 1, rows * 8), 0
        ).astype(np.int64)
        if self.fixed:
            with np.errstate(invalid="ignore"):
                eighths[means > hi] = OVER
                eighths[means < lo] = UNDER
        states = np.zeros(n, dtype=np.int64)
        if reference is not None:
            ref = bucket_means(t_abs, reference, bucket_s, last_bucket, n)
            with np.errstate(invalid="ignore", divide="ignore"):
                ref = np.where(ref > 0, ref, np.nan)  # an imported log's 0.0 is no target
                err = (means / ref - 1.0) * 100.0
            valid = np.isfinite(err)
            states = np.where(valid & (err > 3.0), 1, np.where(valid & (err < -3.0), 2, 0))
        states[eighths < 0] = CLIPPED
        last = values[np.isfinite(values)]
        latest = "--" if last.size == 0 else f"{last[-1]:.{self.decimals}f}"
        heights, state_t = tuple(eighths.tolist()), tuple(states.tolist())
        old_heights, old_states = self._heights, self._states
        label_changed = (latest, (lo, hi)) != (self._latest, self._scale)
        self._heights, self._states = heights, state_t
        self._latest, self._scale = latest, (lo, hi)
        if label_changed:
            self.refresh(Region(0, 0, LABEL_W + self.styles.padding.left, rows))
        if len(old_heights) != n or (heights, state_t) == (old_heights, old_states):
            if len(old_heights) != n:
                self.refresh()
            return
        changed = [
            i for i in range(n) if heights[i] != old_heights[i] or state_t[i] != old_states[i]
        ]
        if changed:
            # One of two fixed regions: the newest bar alone (most frames) or the whole
            # plot (a new bucket shifts every bar). Not a span fitted to the changed
            # bars: that is a new Region nearly every frame, and Textual memoises Region
            # geometry in LRU caches of up to 4,096 pairs, which an hour of distinct
            # spans kept filling (issue 10's TUI soak: ~20 kB/min for 40 min).
            x0 = LABEL_W + self.styles.padding.left
            if changed == [n - 1]:
                self.refresh(Region(x0 + n - 1, 0, 1, rows))
            else:
                self.refresh(Region(x0, 0, n, rows))

    def render_line(self, y: int) -> Strip:
        rows = max(1, self.size.height)
        label_style = self.get_component_rich_style("stripchart--label")
        styles = (
            self.get_component_rich_style("stripchart--bar"),
            self.get_component_rich_style("stripchart--lean"),
            self.get_component_rich_style("stripchart--rich"),
            self.get_component_rich_style("stripchart--clip"),
        )
        if y == 0:
            label = f"{self.label} {self._latest}"
        elif y == rows - 1:
            label = f"{self._scale[0]:.{self.decimals}f}-{self._scale[1]:.{self.decimals}f}"
        elif y == 1:
            label = f"{self.unit} {self.window_s:.0f}s"
        else:
            label = ""
        segments = [Segment(label[: LABEL_W - 1].ljust(LABEL_W), label_style)]
        base = (rows - 1 - y) * 8
        run_chars: list[str] = []
        run_state = -1
        for h, s in zip(self._heights, self._states, strict=False):
            if h >= 0:
                ch = BARS[int(min(8, max(0, h - base)))]
            else:  # off a fixed scale: only its mark, at the edge it passed
                edge = (h == OVER and y == 0) or (h == UNDER and y == rows - 1)
                ch = (ABOVE if h == OVER else BELOW) if edge else " "
            if s != run_state and run_chars:
                segments.append(Segment("".join(run_chars), styles[run_state]))
                run_chars = []
            run_state = s
            run_chars.append(ch)
        if run_chars:
            segments.append(Segment("".join(run_chars), styles[run_state]))
        return Strip(segments).extend_cell_length(self.size.width, self.rich_style)
