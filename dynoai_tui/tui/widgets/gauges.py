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

AFR_TOLERANCE_PCT = 3.0
"""AFR within this percentage of target is on target; beyond it is lean or rich."""


def rounded(value: float | None, decimals: int) -> float | None:
    """The value as the gauge shows it, ``None`` for missing / stale (NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), decimals)


COMPACT_UNITS = frozenset({"hp", "N·m", "°C"})
"""Units the compact one-line gauges keep: the ones their label does not imply."""


class Gauge(Widget):
    """Label over a number with its unit."""

    value: reactive[float | None] = reactive(None)

    def __init__(
        self,
        label: str,
        unit: str,
        channel: str,
        *,
        decimals: int = 0,
        big: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id or f"gauge-{channel}", classes=classes)
        self.label = label
        self.unit = unit
        self.channel = channel
        """Canonical channel this gauge shows (the app looks values up by it)."""
        self.decimals = decimals
        self.big = big
        """Draw large digits when the screen is wide (primary gauges only)."""
        if big:
            self.add_class("-primary")

    def show(self, value: float | None) -> None:
        """Set from a raw reading; repaints only when the shown digits change."""
        self.value = rounded(value, self.decimals)

    @property
    def text(self) -> str:
        """The number as shown ("--" when stale)."""
        v = self.value
        return "--" if v is None else f"{v:.{self.decimals}f}"

    def render(self) -> RenderableType:
        if self.big and self.screen.has_class("-big"):
            head = Text.assemble((self.label, "bold"), " ", (self.unit, "dim"))
            return Group(head, Digits(self.text))
        if self.screen.has_class("-compact"):
            if self.unit in COMPACT_UNITS:  # "Power 94.6" left hp or kW to guess
                return Text.assemble(
                    (self.label + " ", "dim"), (self.text, "bold"), " ", (self.unit, "dim")
                )
            return Text.assemble((self.label + " ", "dim"), (self.text, "bold"))
        return Text.assemble(
            (self.label, "dim"), "\n", (self.text, "bold"), " ", (self.unit, "dim")
        )


class AfrGauge(Gauge):
    """AFR against its target, coloured lean (red) / rich (blue) / on target (green)."""

    target: reactive[float | None] = reactive(None)

    def __init__(self, *, big: bool = True, id: str | None = None) -> None:
        super().__init__("AFR", "AFR", "afr", decimals=1, big=big, id=id)

    def show_with_target(self, afr: float | None, target: float | None) -> None:
        self.value = rounded(afr, 1)
        self.target = rounded(target, 1)
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
