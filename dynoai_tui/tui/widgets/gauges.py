"""Single-value gauges: one reactive each, rounded before it is set.

A gauge's reactive holds the value already rounded to what it displays, so the
20 Hz timer can set every gauge every frame and only the ones whose shown digits
changed repaint (Textual skips a reactive set to an equal value). NaN (a stale
channel) is stored as ``None`` because NaN never equals itself. In the wide layout
(``-big`` on the screen) the primary gauges draw 3 x 3 digits, readable from a metre.
"""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.renderables.digits import Digits
from textual.widget import Widget

from core.alarms import retard_text

AFR_TOLERANCE_PCT = 3.0
"""AFR within this percentage of target is on target; beyond it is lean or rich."""


def rounded(value: float | None, decimals: int) -> float | None:
    """The value as the gauge shows it, ``None`` for missing / stale (NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), decimals)


WHOLE_FROM = 100.0
"""From this magnitude a reading drops its decimals ("156.9 N·m" is "157 N·m"): a
tenth of a hundred is noise, and the digit it frees keeps the unit on screen."""


def widest_len(digits: int, decimals: int) -> int:
    """Characters of the widest number a gauge with ``digits`` integer digits shows."""
    if decimals <= 0:
        return digits
    return max(digits, min(digits, 2) + 1 + decimals)  # "99.9" below WHOLE_FROM


class Gauge(Widget):
    """Label over a number with its unit; the unit stays at every width.

    When its line is short the one-line (compact) gauge gives up, in order: the full
    label for its short form, the number's decimals, and (only for a unit its label
    already names: RPM, MAP, TPS) the unit. The two-line gauge gives up the full label,
    then one decimal, then moves the unit up beside the label; it never drops the space
    between the number and its unit (at 100 x 30 with every gauge on, "102hp"). The
    choice is made from the widest reading the gauge can show, not the current one, so a
    unit does not vanish as a value grows (QA at 100 x 30: "Torque 156.9" without N·m at
    WOT, "106.2" with it at part load).
    """

    value: reactive[float | None] = reactive(None)

    def __init__(
        self,
        label: str,
        unit: str,
        channel: str,
        *,
        short: str = "",
        decimals: int = 0,
        digits: int = 3,
        floor: float | None = None,
        unit_implied: bool = False,
        big: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id or f"gauge-{channel}", classes=classes)
        self.label = label
        self.short = short or label
        """The label when the full one does not fit ("Pwr" for "Power")."""
        self.unit = unit
        self.channel = channel
        """Canonical channel this gauge shows (the app looks values up by it)."""
        self.decimals = decimals
        self.digits = digits
        """Integer digits of the widest reading (sign included): sizes the layout."""
        self.floor = floor
        """Readings below it show as it (power and torque: 0 on overrun, not motoring)."""
        self.unit_implied = unit_implied
        """The label names the unit by convention (RPM, MAP kPa, TPS %): the one unit the
        compact line may leave out."""
        self.big = big
        """Draw large digits when the screen is wide (primary gauges only)."""
        self.widest = 0
        """Characters of the widest reading when not :func:`widest_len`'s (0: its)."""
        if big:
            self.add_class("-primary")

    def decimals_for(self, value: float) -> int:
        """Decimals for ``value``: none from :data:`WHOLE_FROM` up."""
        return 0 if abs(value) >= WHOLE_FROM else self.decimals

    def show(self, value: float | None) -> None:
        """Set from a raw reading; repaints only when the shown digits change."""
        if value is not None and self.floor is not None and value < self.floor:
            value = self.floor  # NaN compares False and stays stale
        v = rounded(value, self.decimals)
        self.value = None if v is None else round(v, self.decimals_for(v))

    def number(self, decimals: int | None = None) -> str:
        """The number as shown ("--" when stale), with at most ``decimals`` decimals."""
        v = self.value
        if v is None:
            return "--"
        d = self.decimals_for(v)
        return f"{v:.{d if decimals is None else min(d, decimals)}f}"

    @property
    def text(self) -> str:
        """The number as shown ("--" when stale)."""
        return self.number()

    def fit_line(self, width: int) -> tuple[str, int, str]:
        """(label, decimals, unit) of the one-line gauge that fits ``width`` cells."""
        widest = max(2, self.widest, widest_len(self.digits, self.decimals))
        whole = max(2, widest_len(self.digits, 0))
        tries = [(self.label, self.decimals, widest), (self.short, self.decimals, widest)]
        tries += [(self.short, 0, whole)]
        for label, decimals, num_w in tries:
            if len(label) + 1 + num_w + 1 + len(self.unit) <= width:
                return label, decimals, self.unit
            if self.unit_implied and len(label) + 1 + num_w <= width:
                return label, decimals, ""
        return ("", 0, self.unit)  # the number and its unit over the label

    def fit_lines(self, width: int) -> tuple[str, int, str]:
        """(top line, decimals, unit after the number) of the two-line gauge in ``width``.

        The number keeps a space before its unit ("102 hp", never "102hp"). A short
        line gives up, in order: the full label for its short form, the number's last
        decimal ("15 hp" for "15.3 hp", "0.9 λ" for "0.87 λ"), then the unit's place on
        the number's line: it moves up beside the label ("TPS %" over "100").
        """
        label = self.label if len(self.label) <= width else self.short
        decimals_tried = [self.decimals] + ([self.decimals - 1] if self.decimals else [])
        for decimals in decimals_tried:
            num_w = max(2, widest_len(self.digits, decimals))
            if decimals == self.decimals:
                num_w = max(num_w, self.widest)
            if num_w + 1 + len(self.unit) <= width:
                return label, decimals, " " + self.unit
        for head in (self.label, self.short):
            if len(self.heading(head)) <= width:
                return self.heading(head), self.decimals, ""
        return self.unit, self.decimals, ""

    def repeats(self, label: str) -> bool:
        """The unit only repeats ``label`` (RPM's "rpm")."""
        return self.unit.casefold() == label.casefold()

    def heading(self, label: str) -> str:
        """``label`` with the unit beside it, unless the unit repeats it ("RPM", not "RPM rpm")."""
        return label if self.repeats(label) else f"{label} {self.unit}"

    def render(self) -> RenderableType:
        width = self.content_size.width
        if self.big and self.screen.has_class("-big"):
            # the big digits' unit is on the label's line (QA at 160 wide: "RPM rpm")
            unit = "" if self.repeats(self.label) else self.unit
            head = Text.assemble((self.label, "bold"), " " if unit else "", (unit, "dim"))
            return Group(head, Digits(self.text))
        if self.screen.has_class("-compact"):
            label, decimals, unit = self.fit_line(width)
            parts: list[str | tuple[str, str]] = []
            if label:
                parts.append((label + " ", "dim"))
            parts.append((self.number(decimals), "bold"))
            if unit:
                parts += [" ", (unit, "dim")]
            return Text.assemble(*parts)
        top, decimals, unit = self.fit_lines(width)
        return Text.assemble((top, "dim"), "\n", (self.number(decimals), "bold"), (unit, "dim"))


class KnockGauge(Gauge):
    """Knock as the ECU reports it: degrees of retard when it logs them, else its count.

    "Knock 11" read as 11 degrees while the alarm said "KNOCK: 1.9 deg retard". The
    retard is what the ECU does about knock now (the alarm's figure); the count only
    ever rises. Once the source has given a retard reading the gauge stays on retard.
    """

    def __init__(self) -> None:
        super().__init__(
            "Knock", "cnt", "knock_count", short="Knk", digits=4, id="gauge-knock_count"
        )
        self.retard = False
        """Showing ``knock_retard_deg`` (the source reports it) instead of the count."""

    def show(self, value: float | None) -> None:
        if not self.retard:
            super().show(value)
            return
        # rounded as the alarm words it (``core.alarms.retard_text``): 0.03 deg at one
        # decimal read "Knock ret 0.0 °" beside "KNOCK: 0.03 deg retard"
        text = retard_text(math.nan if value is None else float(value))
        self.value = None if text == "--" else float(text)

    def number(self, decimals: int | None = None) -> str:
        if not self.retard or self.value is None:
            return super().number(decimals)
        return retard_text(self.value)  # never fewer digits than the alarm line's

    def show_knock(self, count: float | None, retard_deg: float | None) -> None:
        """Set from the two knock channels (either may be NaN or missing)."""
        if not self.retard and retard_deg is not None and math.isfinite(retard_deg):
            self.retard = True
            self.label, self.short, self.unit = "Knock ret", "Knk ret", "°"
            self.decimals, self.digits = 1, 2
            self.widest = len("0.034")  # two significant digits under 0.1
            self.value = None
            self.refresh()
        self.show(retard_deg if self.retard else count)


def target_value(target: float | None, decimals: int = 1) -> float | None:
    """An AFR / lambda target as shown, ``None`` ("--") when there is none.

    A target that is not finite or not above zero is no target: logs imported from other
    tools carry 0.0 where they logged none, and the gauge read "AFR 10.8/0.0" (QA).
    """
    if target is None or not math.isfinite(target) or target <= 0:
        return None
    return round(float(target), decimals)


class AfrGauge(Gauge):
    """AFR against its target, coloured lean (red) / rich (blue) / on target (green)."""

    target: reactive[float | None] = reactive(None)

    def __init__(self, *, big: bool = True, id: str | None = None) -> None:
        super().__init__("AFR", "AFR", "afr", decimals=1, big=big, id=id)

    def show_with_target(self, afr: float | None, target: float | None) -> None:
        """Show ``afr`` against ``target``; a target of 0 (or below) is none.

        An ECU without a target table sends 0.0: the gauge read "10.8 / 0.0" where
        "--" says there is no target.
        """
        self.value = rounded(afr, 1)
        self.target = target_value(target)
        self._classify()

    @property
    def state(self) -> str:
        """``lean``, ``rich``, ``ok`` or ``unknown`` (no reading or no target)."""
        if self.value is None or self.target is None or self.target <= 0:
            return "unknown"
        err_pct = (self.value / self.target - 1.0) * 100.0
        if err_pct > AFR_TOLERANCE_PCT:
            return "lean"
        if err_pct < -AFR_TOLERANCE_PCT:
            return "rich"
        return "ok"

    def _classify(self) -> None:
        state = self.state
        for name in ("lean", "rich", "ok"):
            self.set_class(state == name, f"-{name}")

    def render(self) -> RenderableType:
        tgt = "--" if self.target is None else f"{self.target:.1f}"
        word = {"lean": "LEAN", "rich": "RICH", "ok": "OK", "unknown": ""}[self.state]
        if self.screen.has_class("-big"):
            head = Text.assemble(("AFR", "bold"), f" tgt {tgt} ", (word, "bold"))
            return Group(head, Digits(self.text))
        if self.screen.has_class("-compact"):
            return Text.assemble(("AFR ", "dim"), (self.text, "bold"), (f"/{tgt}", "dim"))
        return Text.assemble(
            ("AFR ", "dim"), (word, "bold"), "\n", (self.text, "bold"), (f" / {tgt}", "dim")
        )
