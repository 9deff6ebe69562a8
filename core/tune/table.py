"""The tune: the ECU's VE table(s) and target table, each on its own axes.

A fuel table and its breakpoints are one thing to a tuner, so :class:`Table`
keeps them together; rows are MAP (load) ascending, columns rpm ascending, the
order ``TableAxes`` uses everywhere. Targets are stored as lambda whatever the
file held (AFR tables are converted with the tune's stoichiometric ratio), so the
correction never has to ask which unit a number is in.

A V-twin with two fuel tables (front and rear cylinder, MegaSquirt "dual table"
or a secondary table used per cylinder) carries both: ``ve`` is the front (or only)
table, ``ve_rear`` the second.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from core.channels import STOICH_GASOLINE
from core.config import ConfigError
from core.coverage.axes import AxesError, TableAxes

F64 = npt.NDArray[np.float64]


class TuneError(ConfigError):
    """A tune file or pasted table that cannot be used. The message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class Table:
    """One 2-D table on rpm x MAP breakpoints.

    Attributes:
        axes: rpm (columns) and MAP (rows) breakpoints, both ascending.
        values: Shape (n_map, n_rpm), rows = MAP.
        name: Where it came from (the ECU's constant name, or "pasted").
    """

    axes: TableAxes
    values: F64
    name: str = ""

    def __post_init__(self) -> None:
        arr = np.array(self.values, dtype=np.float64)
        if arr.shape != self.axes.shape:
            raise TuneError(
                f"table {self.name or '(unnamed)'}: values are {arr.shape[0]} x "
                f"{arr.shape[1] if arr.ndim == 2 else '?'}, the axes need {self.axes.shape[0]} x "
                f"{self.axes.shape[1]} (MAP rows x rpm columns)"
            )
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            m, r = (int(v) for v in bad[0])
            raise TuneError(
                f"table {self.name or '(unnamed)'}: cell (MAP row {m}, rpm col {r}) is not a number"
            )
        arr.setflags(write=False)
        object.__setattr__(self, "values", arr)

    @classmethod
    def of(cls, rpm: Any, map_kpa: Any, values: Any, name: str = "") -> Table:
        try:
            axes = TableAxes(
                np.asarray(rpm, dtype=np.float64), np.asarray(map_kpa, dtype=np.float64)
            )
        except AxesError as exc:
            raise TuneError(f"table {name or '(unnamed)'}: {exc}") from None
        return cls(axes, np.asarray(values, dtype=np.float64), name)

    def with_values(self, values: Any) -> Table:
        return replace(self, values=np.asarray(values, dtype=np.float64))

    def at(self, rpm: Any, map_kpa: Any) -> F64:
        """Bilinear interpolation as the ECU does it, clamped at the table's edges."""
        r = np.clip(np.asarray(rpm, dtype=np.float64), self.axes.rpm[0], self.axes.rpm[-1])
        m = np.clip(
            np.asarray(map_kpa, dtype=np.float64), self.axes.map_kpa[0], self.axes.map_kpa[-1]
        )
        ir = np.clip(np.searchsorted(self.axes.rpm, r, side="right") - 1, 0, self.axes.rpm.size - 2)
        im = np.clip(
            np.searchsorted(self.axes.map_kpa, m, side="right") - 1, 0, self.axes.map_kpa.size - 2
        )
        fr = (r - self.axes.rpm[ir]) / (self.axes.rpm[ir + 1] - self.axes.rpm[ir])
        fm = (m - self.axes.map_kpa[im]) / (self.axes.map_kpa[im + 1] - self.axes.map_kpa[im])
        v = self.values
        out: F64 = (
            v[im, ir] * (1 - fr) * (1 - fm)
            + v[im, ir + 1] * fr * (1 - fm)
            + v[im + 1, ir] * (1 - fr) * fm
            + v[im + 1, ir + 1] * fr * fm
        )
        return out

    def resampled(self, axes: TableAxes) -> Table:
        """The table looked up at another table's breakpoints (bilinear, clamped)."""
        rpm, map_kpa = np.meshgrid(axes.rpm, axes.map_kpa)
        return Table(axes, self.at(rpm, map_kpa), self.name)


@dataclass(frozen=True, eq=False)
class Tune:
    """What the correction needs from a tune, plus enough to write it back.

    Attributes:
        ve: The (front) VE table, in percent.
        ve_rear: The rear cylinder's VE table on a V-twin with two tables, else None.
        target_lambda: The AFR/lambda target table as lambda, or None when the tune has none.
        spark: The spark advance table (degrees), or None.
        stoich: Stoichiometric AFR the tune's AFR figures use.
        source: Human description of where it came from ("base.msq (Speeduino)").
        kind: "msq" or "paste"; says which writer can round-trip it.
        names: Which of the file's constants held what ({"ve": "veTable", ...}).
        raw: The original file text for byte-preserving write-back (msq only).
        digits: Decimal places per constant as the file declares them.
    """

    ve: Table
    ve_rear: Table | None = None
    target_lambda: Table | None = None
    spark: Table | None = None
    stoich: float = STOICH_GASOLINE
    source: str = ""
    kind: str = "paste"
    names: dict[str, str] = field(default_factory=dict)
    raw: str | None = None
    digits: dict[str, int] = field(default_factory=dict)

    @property
    def axes(self) -> TableAxes:
        return self.ve.axes

    def ve_tables(self) -> dict[str, Table]:
        """{"ve": front/only} plus {"ve_rear": rear} when there is one."""
        out = {"ve": self.ve}
        if self.ve_rear is not None:
            out["ve_rear"] = self.ve_rear
        return out

    def with_ve(self, ve: F64, ve_rear: F64 | None = None) -> Tune:
        """A copy with new VE values on the same axes (the target table is kept)."""
        rear = self.ve_rear
        if ve_rear is not None:
            if rear is None:
                raise TuneError("this tune has no rear VE table to replace")
            rear = rear.with_values(ve_rear)
        return replace(self, ve=self.ve.with_values(ve), ve_rear=rear)


__all__ = ["Table", "Tune", "TuneError"]
