"""Text panels: status header, suggestions, instruction line, alarm line.

Each panel holds one reactive ``Text`` built from the snapshot by a pure function
(easy to test, no widget state). Rich ``Text`` compares equal when plain text and
spans match, so a frame that changes nothing repaints nothing.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from core.plan.instruction import fit_line
from core.plan.types import PlanView, Suggestion
from core.snapshot import Snapshot, SourceInfo
from core.source import SourceState
from dynoai_tui.commands.headless import format_clock, format_size

STATE_STYLE: dict[SourceState, str] = {
    SourceState.CONNECTING: "yellow",
    SourceState.CONNECTED: "green",
    SourceState.STALE: "yellow",
    SourceState.RECONNECTING: "bold yellow",
    SourceState.FAILED: "bold red",
    SourceState.FINISHED: "dim",
}
BAND_STYLE: dict[str, str] = {"high": "bold black on green", "medium": "bold black on yellow"}
LOW_BAND_STYLE = "black on grey50"
HIGH_EFFICIENCY = 0.7
MEDIUM_EFFICIENCY = 0.4


def band_for(efficiency: float) -> str:
    """Efficiency band as the planning brief defines it: >= 0.7 high, 0.4-0.7 medium."""
    if efficiency >= HIGH_EFFICIENCY:
        return "high"
    if efficiency >= MEDIUM_EFFICIENCY:
        return "medium"
    return "low"


def rate_text(rate_hz: float) -> str:
    """Sample rate to two significant figures, so jitter does not repaint the header."""
    if rate_hz >= 1000:
        return f"{rate_hz / 1000:.1f} kHz"
    if rate_hz >= 100:
        return f"{round(rate_hz, -1):.0f} Hz"
    return f"{rate_hz:.0f} Hz"


def speed_text(speed: float) -> str:
    """A replay's speed: "x2", "x0.5", "max" when it reads as fast as it goes (was "xinf")."""
    return f"x{speed:g}" if math.isfinite(speed) else "max"


def source_text(info: SourceInfo) -> Text:
    rate = f" {rate_text(info.rate_hz)}" if info.state == SourceState.CONNECTED else ""
    return Text.assemble(
        (info.name, "bold"), " ", ("●", STATE_STYLE[info.state]), f" {info.state.value}{rate}"
    )


def header_text(
    snap: Snapshot,
    *,
    vehicle: str,
    replay: bool,
    length_s: float | None = None,
    compact: bool = False,
    view: str = "",
) -> Text:
    """Vehicle · sources · recording · pulls · replay state, one line.

    ``compact`` (below 100 columns) drops the app name and the sources' state words
    (the dot's colour stays), so the replay position still fits in 80 columns.
    ``view``: the heatmap's view when it is not the hits, named at the end (the compact
    layout has no heatmap border to title it: QA pressed v through six views at 80x24
    with nothing saying which one showed).
    """
    sep = (" │ ", "dim") if compact else ("  │  ", "dim")
    name = (vehicle or snap.vehicle or "no vehicle", "bold")
    text = Text.assemble(name) if compact else Text.assemble(("DynoAI", "bold"), "  ", name)
    for info in snap.sources:
        text.append_text(Text.assemble(sep))
        if compact:
            text.append_text(
                Text.assemble((info.name, "bold"), " ", ("●", STATE_STYLE[info.state]))
            )
        else:
            text.append_text(source_text(info))
    text.append_text(Text.assemble(sep))
    if snap.recording is not None:
        rec = snap.recording
        text.append_text(
            Text.assemble(
                ("● REC", "bold white on red"),
                f" {format_clock(rec.elapsed_s)} {format_size(rec.bytes_written)}",
            )
        )
    else:
        text.append("no rec" if compact else "not recording", "dim")
    text.append_text(Text.assemble(sep))
    # "pulls 2/8" against the session's limit; with none, the count alone (QA: "pulls
    # 0/∞" read as cryptic)
    of_max = "" if snap.pulls_max is None else f"/{snap.pulls_max}"
    pull_style = (
        "bold red" if snap.pulls_max is not None and snap.pulls_done >= snap.pulls_max else ""
    )
    text.append(f"pulls {snap.pulls_done}{of_max}", pull_style)
    if snap.in_pull:
        text.append(" IN PULL" if compact else "  IN PULL", "bold reverse")
    if replay:
        text.append_text(Text.assemble(sep))
        state = "finished" if snap.finished else "paused" if snap.paused else "playing"
        total = f"/{format_clock(length_s)}" if length_s is not None else ""
        position = f"{format_clock(snap.elapsed_s)}{total}"
        speed = speed_text(snap.speed)
        label = f"{state} {speed} {position}" if compact else f"replay {state} {speed} t={position}"
        text.append(label, "bold")
    if view:
        text.append_text(Text.assemble(sep))
        text.append(view, "bold")
    return text


ESTIMATE_NOTE = "Quick estimate: simulating this vehicle's tests…"


def plan_text(
    plan: PlanView, *, width: int, max_tests: int = 99, show_filtered: bool, height: int = 999
) -> Text:
    """Ranked tests (full descriptions, wrapped), next cells, filtered tests: as many as fit.

    ``height`` is the panel's rows, and the text never takes more (a row past the
    panel's edge is not seen): the first three suggestions always, their descriptions
    cut short with "…" only when the three do not fit in full (:func:`_description_caps`),
    more while they fit in full, then the targets and error lines, then filtered tests
    while rows remain.
    """
    text = Text()
    used = 0
    if plan.estimate and plan.suggestions:
        # the kinematic planner's answer while this vehicle's tests are simulated: the
        # note in full, in one row when the three suggestions would not fit under it
        # (the line says it too)
        rows = textwrap.wrap(ESTIMATE_NOTE, max(8, width))
        least = 2 * min(FIRST_SHOWN, len(plan.suggestions))
        if len(rows) + least > height:
            rows = [ESTIMATE_NOTE.split(":")[0] + "…"][: max(height - least, 0)]
        if rows:
            text.append("\n".join(rows) + "\n", "italic yellow")
            used += len(rows)
    if not plan.suggestions:
        # the planner's verdict when it has one ("all reachable cells are covered", or no
        # test left that gains a cell a minute), else it has not answered yet
        verdict = plan.instruction or "No test suggested yet: waiting for the planner."
        rows = textwrap.wrap(verdict, max(8, width)) or [""]
        text.append("\n".join(rows) + "\n", "dim")
        used += len(rows)
    room = max(8, width - 4)
    tail: list[tuple[str, str]] = []
    if plan.targets:
        cells = "  ".join(f"{t.rpm:.0f}/{t.map_kpa:.0f}" for t in plan.targets)
        tail.append(("Next cells: " + cells, "bold"))
    if plan.errors_by_type:
        checked = " · ".join(f"{k.split('_')[0]} {e:.0f}% ({n})" for k, e, n in plan.errors_by_type)
        tail.append((f"checked: {checked}", "dim"))
    # the tail wraps as the panel draws it: every row it takes is counted
    wrapped_tail = [(textwrap.wrap(line, max(8, width)) or [""], style) for line, style in tail]
    shown = plan.suggestions[:max_tests]
    full = []
    for sug in shown:
        # knock was seen in cells it loads: a tuner takes timing out there first
        described = f"⚠ {sug.description}" if sug.knock_cells else sug.description
        lines = textwrap.wrap(described, room, initial_indent=" " * 5) or [""]
        lines[0] = lines[0].lstrip()
        full.append(lines)
    least = 2 * min(FIRST_SHOWN, len(shown))  # a row of description and a gain line each
    whole_top = least + len(full[0]) - 1 if full else 0
    room_rows = height - used  # under the estimate's note, when there is one
    while wrapped_tail and room_rows - sum(len(rows) for rows, _ in wrapped_tail) < least:
        # a short panel keeps the three suggestions over the error line, then over the
        # next cells (the heatmap marks those too)
        wrapped_tail.pop()
    errors_last = bool(plan.errors_by_type) and len(wrapped_tail) == len(tail)
    if errors_last and room_rows - sum(len(rows) for rows, _ in wrapped_tail) < whole_top:
        wrapped_tail.pop()  # and the top suggestion whole over the error line
    tail_rows = sum(len(rows) for rows, _ in wrapped_tail)
    caps = _description_caps([len(lines) for lines in full], max(room_rows - tail_rows, 0))
    for i, (sug, lines) in enumerate(zip(shown, full, strict=True), start=1):
        if i > len(caps):
            break
        band = band_for(sug.efficiency)
        lines = _cut(lines, caps[i - 1], room)
        if i == 1 and plan.running:
            # the test the line follows as it runs: listed first whatever its rank
            # (its own score there read 0.84 above a 1.00)
            text.append(f"{i} ")
            text.append(" now  ", "bold reverse")
        else:
            # the walk's order, coloured by the test's rate (QA: in walk order the scores
            # read "1 0.76" over "2 1.00", a ranking bug to a tuner, and nothing said
            # what they were)
            text.append(f"{i}", BAND_STYLE.get(band, LOW_BAND_STYLE))
            text.append(" ")
        text.append(f" {lines[0]}\n", "bold")
        for more in lines[1:]:
            text.append(f"    {more}\n", "bold")
        gain = _gain_line(sug, width)
        text.append(gain, "dim")
        if sug.knock_cells and len(gain) + len(KNOCK_NOTE) <= width:
            text.append(KNOCK_NOTE, "bold red")
        text.append("\n")
        used += len(lines) + 1
    for rows, style in wrapped_tail:
        text.append("\n".join(rows) + "\n", style)
        used += len(rows)
    if show_filtered and plan.filtered:
        seen: set[tuple[str, str]] = set()
        entries = []
        for f in plan.filtered:
            if (f.test_type, f.reason) not in seen:
                seen.add((f.test_type, f.reason))
                entries.append(textwrap.wrap(f"✗ {f.description}: {f.reason}", max(8, width - 1)))
        # the header only with at least its first entry (at 80x24 it stood alone)
        if used + 1 + len(entries[0]) <= height:
            text.append("Filtered:\n", "bold")
            used += 1
            for entry in entries:
                if used + len(entry) > height:
                    break
                text.append("\n".join(entry) + "\n", "dim")
                used += len(entry)
    text.rstrip()
    return text


KNOCK_NOTE = " · knock seen there"
"""After the gain line of a test that loads cells where knock was seen, when it fits (the
description starts with a warning sign at any width)."""
FIRST_SHOWN = 3
"""Suggestions the panel always shows when there are that many (issue 11: >= 3 at 80x24)."""


def _description_caps(lengths: list[int], budget: int) -> list[int]:
    """Rows each shown suggestion's description gets, so the list fits ``budget`` rows.

    Every suggestion takes its description's rows plus a gain line. The first
    :data:`FIRST_SHOWN` are always shown: in full when they fit, else the top one keeps
    as much of its own as leaves the others a row each, and the others share the rest
    evenly (at 80x24 the demo's opening walk took 10 of the panel's 17 rows, and the
    third suggestion was drawn below the panel's edge). Later suggestions are shown
    only in full, while they fit.
    """
    first = lengths[:FIRST_SHOWN]
    if sum(first) + len(first) <= budget:
        caps = list(first)
        used = sum(first) + len(first)
        for n in lengths[FIRST_SHOWN:]:
            if used + n + 1 > budget:
                break
            caps.append(n)
            used += n + 1
        return caps
    if not first:
        return []
    rows = max(budget - len(first), len(first))
    top = min(first[0], rows - (len(first) - 1))
    caps = [max(top, 1)]
    rest, left = first[1:], rows - caps[0]
    # water-fill the others: the shortest keep all of theirs, the rest share what is left
    order = sorted(range(len(rest)), key=lambda k: rest[k])
    shares = [1] * len(rest)
    for n_done, k in enumerate(order):
        share = max(left // (len(rest) - n_done), 1)
        shares[k] = max(min(rest[k], share), 1)
        left -= shares[k]
    return caps + shares


def _cut(lines: list[str], cap: int, room: int) -> list[str]:
    """``lines`` kept to ``cap`` rows, the last one ending in "…" when any were dropped."""
    if len(lines) <= cap:
        return lines
    kept = lines[: max(cap, 1)]
    last = kept[-1]
    limit = room if len(kept) > 1 else room - 5
    kept[-1] = (last if len(last) < limit else last[: max(limit - 1, 0)].rstrip()) + "…"
    return kept


def alarm_items(snap: Snapshot) -> list[str]:
    """Engine alarms from the engine plus any source that is not delivering."""
    items = [str(a) for a in snap.alarms]
    for info in snap.sources:
        if any(info.name in item for item in items):
            continue  # the engine already reported it
        if info.state in (SourceState.STALE, SourceState.RECONNECTING, SourceState.FAILED):
            msg = f": {info.message}" if info.message else ""
            items.append(f"source {info.name} lost ({info.state.value}){msg}")
    return items


def alarm_text(snap: Snapshot, width: int | None = None) -> Text:
    """The alarm line's text (:func:`alarm_items`), fitted to ``width`` (:func:`fit_alarms`)."""
    items = alarm_items(snap)
    if not items:
        return Text("no alarms", "dim")
    return Text(fit_alarms(items, width), "bold")


ALARM_SEP = "   ⚠ "


def fit_alarms(items: list[str], width: int | None) -> str:
    """The alarms as "⚠ a   ⚠ b" in ``width`` cells, each whole or shortened by clauses.

    An alarm's detail goes first, a clause at a time from its end ("SOURCE wb STALE: no
    data from /dev/ttyUSB0 for 3.2 s: is the device powered?" to "SOURCE wb STALE: no
    data from /dev/ttyUSB0 for 3.2 s", then "SOURCE wb STALE"), the longest alarm's
    first (a knock's "0.03 deg retard" stays while a source's explanation goes); then
    the last alarms give way whole to a count of them ("+2"). At 80 columns the line
    read "... for 3.2 s: is the device" (QA).
    """
    parts = list(items)

    def line(extra: int = 0) -> str:
        more = f"   +{extra}" if extra else ""
        return "⚠ " + ALARM_SEP.join(parts) + more

    if width is None or len(line()) <= width:
        return line()
    while len(line()) > width:
        detailed = [j for j in range(len(parts)) if ": " in parts[j]]
        if not detailed:
            break
        i = max(detailed, key=lambda j: len(parts[j]))
        parts[i] = parts[i][: parts[i].rindex(": ")]
    dropped = 0
    while len(line(dropped)) > width and len(parts) > 1:
        parts.pop()
        dropped += 1
    text = line(dropped)
    if len(text) > width:  # one alarm's head alone is too long: cut it at a word
        text = fit_line(text, width)
    return text


class TextPanel(Widget):
    """A widget showing one reactive Rich Text."""

    content: reactive[Text] = reactive(Text, layout=False)

    def render(self) -> Text:
        return self.content

    @property
    def plain(self) -> str:
        """The panel's text as shown (for tests and bench checks)."""
        return self.content.plain


class StatusHeader(TextPanel):
    """The one-line header: vehicle, sources, elapsed time, recording."""


class InstructionLine(TextPanel):
    """The planner's plain instruction for the tuner right now."""

    def render(self) -> Text:
        # one row: a line longer than the terminal is worded shorter, then cut at a word's
        # end with "…" (QA at 80x24: "▶ next: hold 1750 rpm: MAP 85 80 ... 25 kPa, each",
        # then "..., each until trus…"): ``core.plan.instruction.fit_line``
        width = self.content_region.width
        text = self.content
        if width <= 1 or text.cell_len <= width:
            return text
        mark = "▶ " if text.plain.startswith("▶ ") else ""
        line = fit_line(text.plain[len(mark) :], width - len(mark))
        return Text.assemble((mark, "bold"), (line, "bold"))


class AlarmLine(TextPanel):
    """Active alarms, highlighted while any is active; fitted to its width when drawn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.items: list[str] = []
        """The active alarms in full (:func:`alarm_items`): :meth:`render` fits them."""

    def set_alarms(self, text: Text, active: bool, items: list[str] | None = None) -> None:
        self.items = list(items or [])
        self.content = text
        self.set_class(active, "-active")

    def render(self) -> Text:
        width = self.content_region.width
        if self.items and width > 1 and self.content.cell_len > width:
            return Text(fit_alarms(self.items, width), "bold")
        return self.content


class SuggestionsPanel(Widget):
    """The plan, fitted to the panel's width when drawn (so a resize re-fits it)."""

    plan: reactive[PlanView] = reactive(PlanView, layout=False)
    compact: reactive[bool] = reactive(False)

    def render(self) -> Text:
        return plan_text(
            self.plan,
            width=max(20, self.content_region.width),
            height=max(1, self.content_region.height),
            show_filtered=True,
        )

    @property
    def plain(self) -> str:
        """The panel's text as shown (for tests and bench checks)."""
        return self.render().plain


def _gain_line(sug: Suggestion, width: int) -> str:
    """What a suggestion brings, in cells, and its minutes, on one line of ``width``.

    In cells, not the planner's priority-weighted gain: "+540 gain" on a 256-cell table
    meant nothing to QA, beside a line that spoke of cells a minute. A test that makes
    no cell trusted on its own says how many it adds data to. At 80x24 the panel is ~23
    columns and a line that wrapped claimed one row more than the panel counted, so the
    short form is used when the long one does not fit.
    """
    minutes = f"{sug.minutes:.1f} min"
    trusted = len(sug.cells)
    touched = len(sug.expected_hits)
    if trusted:
        cells = "cell" if trusted == 1 else "cells"
        forms = (f"{trusted} {cells} trusted", f"{trusted} {cells}")
    else:
        cells = "cell" if touched == 1 else "cells"
        forms = (f"data in {touched} {cells}", f"data in {touched}")
    for what in forms:
        line = f"   {what} · {minutes}"
        if len(line) <= width:
            return line
    return line[:width]
