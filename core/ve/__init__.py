"""VE correction: from binned, confident evidence to a corrected tune, plus the knock table."""

from core.ve.correct import CellEvidence, VeTableResult, correct_table
from core.ve.knock import KnockResult, advise
from core.ve.result import VeResult
from core.ve.settings import VeSettings

__all__ = [
    "CellEvidence",
    "KnockResult",
    "VeResult",
    "VeSettings",
    "VeTableResult",
    "advise",
    "correct_table",
]
