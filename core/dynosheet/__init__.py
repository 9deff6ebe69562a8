"""Dyno sheet: power, torque and mixture vs rpm for every WOT pull, weather corrected.

After every pull a dyno operator looks at the power and torque curves, the peaks
and the mixture, over the previous pulls (what WinPEP or Power Core show). This
module turns the engine's fused rows plus the pull detector's ``wot_pull``
events into one :class:`PullSheet` per pull, the same way live (the dashboard's
pulls screen) and offline (``dynoai report``): :class:`SheetTap` wraps the
session's tracker, sees every fused block and every pull event, and hands them
to a :class:`DynoSheetBuilder`. Nothing here re-fuses or re-detects anything.

Curves: samples of the pull (from the detected start to the top rpm) are
averaged in ``bin_rpm`` (50 rpm) bins, then smoothed with a centred moving
average ``smoothing_rpm`` wide (default 250 rpm, i.e. 5 bins; 0 = raw bin
means). That is the knob WinPEP calls smoothing, stated here as a window in rpm
so two sheets can be compared. Torque comes from the ``torque_nm`` channel (or
from power and rpm when only power is logged), power from ``power_hp`` (or from
torque); drum speed and lambda are averaged in the same bins.

Weather correction (what the sheet says it used, and from which inputs):

* **SAE J1349** (June 1990 revision, the form dyno software uses): reference
  99 kPa dry air, 25 degC::

      CF = 1.18 * (99 / Pd) * sqrt((T + 273) / 298) - 0.18

* **STD** (the older SAE J607 "standard"): 29.92 inHg (101.325 kPa) dry air,
  60 degF (15.6 degC)::

      CF = (101.325 / Pd) * sqrt((T + 273.15) / 288.7)

  Public descriptions of both: Dynomite Dynamometer, "Corrected Horsepower"
  (dynomitedynamometer.com/dyno-tech-talk/corrected-horsepower.htm) and
  B. Bowling, "standard corrections", DIY-EFI list, 1 Mar 1995.

``Pd`` is the dry-air pressure, baro minus water vapour pressure; ``T`` the
intake air temperature. Inputs are the medians over the pull of ``baro_kpa``,
the dyno weather module's ``ambient_c`` (else the ECU's ``iat_c``) and, when
logged, ``humidity_pct`` (else the given humidity, else dry air, which the sheet
says). Vapour pressure = RH x saturation pressure
(Buck 1996: ``0.61121 exp((18.678 - T/234.5) (T / (257.14 + T)))`` kPa). With no
baro logged the sheet is uncorrected (CF 1, said so).

The package is split by job: ``correction`` (the weather factors), ``sheet``
(binning, smoothing and peaks of one pull), ``builder`` (the live/offline feed
through :class:`SheetTap`) and ``render`` (JSON and text). The names callers
use are re-exported here, so ``core.dynosheet`` stays the one public surface.
"""

from core.dynosheet.builder import DynoSheetBuilder, SheetTap
from core.dynosheet.correction import (
    CORRECTION_NAMES,
    CORRECTIONS,
    Correction,
    correction_for,
    sae_j1349_factor,
    saturation_kpa,
    std_factor,
)
from core.dynosheet.render import sheet_to_dict, sheet_to_text
from core.dynosheet.sheet import BIN_RPM, DEFAULT_SMOOTHING_RPM, PullSheet, pull_sheet

__all__ = [
    "BIN_RPM",
    "CORRECTIONS",
    "CORRECTION_NAMES",
    "DEFAULT_SMOOTHING_RPM",
    "Correction",
    "DynoSheetBuilder",
    "PullSheet",
    "SheetTap",
    "correction_for",
    "pull_sheet",
    "sae_j1349_factor",
    "saturation_kpa",
    "sheet_to_dict",
    "sheet_to_text",
    "std_factor",
]
