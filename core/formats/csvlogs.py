"""Text logs from tuning tools, the tool recognised from the file's content.

Every flavour ends as a :class:`RawLog` (original names, units, display values on
one time axis); ``model.build_imported`` maps it onto canonical channels. What
each flavour looks like, and how it is recognised (never from the extension):

* **Haltech NSP** CSV: ``%DataLog%``, ``DataLogVersion``, ``Channel :`` / ``ID :`` /
  ``Type :`` blocks, then rows whose first cell is a time of day
  (``14:15:46.020``) and whose values are raw integers scaled by each channel's
  Type (Haltech CAN broadcast protocol: AbsPressure x0.1 kPa, Temperature x0.1 K,
  AFR x0.001 lambda, ...).
* **HP Tuners VCM Scanner**: ``HP Tuners CSV Log File``, ``[Channel Information]``
  (ids, names, units rows; names may hold commas inside quotes), ``[Channel Data]``
  with sparse rows; ``Offset`` in seconds.
* **Power Vision** and **Car Scanner** long format: one row per (time, signal,
  value[, units]); pivoted to one column per signal.
* **TunerStudio / MegaLogViewer** CSV and **MSL**: a names row then a units row.
* **RomRaider** logger: ``Time (msec)`` or a time of day, ``Name (unit)`` headers,
  external wideband names (PLX, Innovate, AEM, Zeitronix), ``;`` with decimal
  commas in European locales; a repeated header starts a new column set.
* **ECUMaster EMU Black / Pro**: ``TIME`` first, ``;`` or tab, EMU Pro names as
  paths (``engine/rpm``), sparse rows.
* **EvoScan**: ``LogID,LogEntryDate,LogEntryTime,LogEntrySeconds,...``.
* **Torque Pro**: ``GPS Time, Device Time, ...``, ``Name(unit)``, ``-`` for no value.
* **EcuTek / ProECU** (``Time`` in ms without a unit), **BlueDriver** (UTF-16,
  title and date lines), **Dynojet WinPEP**, and any other table with a time
  column (Link PCLink and Power Core exports included, unverified: no public
  description was found): title and metadata lines before the header are
  skipped, units come from ``(unit)`` / ``[unit]``, and a time column without a
  unit is read by its spacing.

The flavour is recognised in ``csvdetect``; the shared header and time rules
live in ``csvtext``; wide tables in ``csvwide``; Haltech, HP Tuners and the
long format in ``csvvendors``. This module only dispatches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.formats.clock import ClockError
from core.formats.csvdetect import FLAVOURS
from core.formats.csvtext import Options, Refused
from core.formats.csvvendors import read_haltech, read_hptuners, read_long
from core.formats.csvwide import Source, read_wide
from core.formats.model import LogImportError, RawLog
from core.formats.table import TableError


def read_text_log(
    path: Path,
    text: str,
    flavour: str,
    options: Options,
    progress: Callable[[int, int], None] | None = None,
    source: Source | None = None,
) -> RawLog:
    """Parse one text flavour into a RawLog.

    With ``source``, ``text`` is the decoded head of the file and the rows are
    parsed from the bytes by the Arrow fast path; NeedFullText means "decode it
    all and call again without ``source``".

    Raises:
        LogImportError: one line naming the file and what is wrong with it.
        NeedFullText: only with ``source``.
    """
    try:
        if flavour == "haltech":
            raw = read_haltech(text, options)
        elif flavour == "hptuners":
            raw = read_hptuners(text, options)
        elif flavour in ("powervision", "carscanner"):
            raw = read_long(text, options)
        else:
            raw = read_wide(text, flavour, options, source)
    except (ClockError, TableError) as exc:
        raise LogImportError(f"{path}: {exc}") from None
    except Refused as exc:
        raise LogImportError(f"{path}: {exc}") from None
    raw.format_name = FLAVOURS[flavour]
    if progress is not None:
        progress(len(text), len(text))
    return raw
