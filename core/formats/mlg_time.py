"""The time axis of an MLG log: 16-bit block stamps unwrapped, and kept honest after damage.

Each block carries a u16 timestamp in 10 us ticks that wraps every 0.65536 s;
the checksum does not cover it. Three things can go wrong, each handled here:

* a flipped stamp byte passes the checksum and would shift every later record
  by up to a wrap (:func:`damaged_stamps` finds it against its neighbours);
* two records further apart than a wrap look closer than they were; the log's
  own "Time" field, when it has one, says how many wraps passed
  (:func:`restore_lost_wraps`), unless that value is itself damaged;
* the rolling counter counts lost records modulo 256: a long damaged gap's
  duration says how many whole rounds it hides (:func:`recount_long_gaps`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from core.formats.mlg_scan import DamagedSpan

TICK_S = 10e-6
"""Resolution of the block timestamp."""
WRAP_S = 65536 * TICK_S
"""The u16 timestamp wraps after this long."""
_PASSES = 8
_CLEARLY = float(np.log(2.0))
"""A stamp is judged damaged when that reading is at least twice as regular."""

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def damaged_stamps(stamps: I64, counters: I64) -> Mask:
    """Blocks whose u16 timestamp cannot be right: out of order with their neighbours.

    When a stamp lies outside the span of its two neighbours, either it is
    damaged (the neighbours are ``span`` apart) or it is genuine and a wrap
    passed (they are ``span + 65536`` apart): the reading whose interval per
    counter step is clearly closer to the log's typical one wins. Per counter
    step, so records lost to other damage do not stretch what "typical" means. Of
    two neighbours both out of order, the one whose removal leaves the more
    regular interval goes. The first and last block have one neighbour: damaged
    when they step back from it.
    """
    bad = np.zeros(stamps.size, dtype=bool)
    for _ in range(_PASSES):
        keep = np.flatnonzero(~bad)
        if keep.size < 3:
            break
        s, c = stamps[keep], counters[keep]
        d = np.diff(s) % 65536
        steps = np.maximum(np.diff(c) % 256, 1)
        typical = float(np.median(d / steps))
        if typical <= 0:
            break
        span = (s[2:] - s[:-2]) % 65536
        expected = (steps[:-1] + steps[1:]) * typical
        if_damaged = np.abs(np.log(np.maximum(span, 1) / expected))
        if_genuine = np.abs(np.log((span + 65536) / expected))
        out = (d[:-1] > span) & (if_damaged + _CLEARLY < if_genuine)
        if out.any():
            prev_better = np.concatenate([[False], out[:-1] & (if_damaged[:-1] <= if_damaged[1:])])
            next_better = np.concatenate([out[1:] & (if_damaged[1:] < if_damaged[:-1]), [False]])
            bad[keep[1:-1][out & ~prev_better & ~next_better]] = True
            continue
        edge = 4 * typical * steps
        bad[keep[0]] = d[0] > max(32768, edge[0])
        bad[keep[-1]] = d[-1] > max(32768, edge[-1])
        break
    return bad


def _trusted_times(time_s: F64) -> Mask:
    """Time values in order with their neighbours; of two out of order, the farther goes."""
    trusted = np.isfinite(time_s)
    for _ in range(_PASSES):
        use = np.flatnonzero(trusted)
        if use.size < 3:
            break
        t = time_s[use]
        before, here, after = t[:-2], t[1:-1], t[2:]
        out = (before <= after) & ((here < before) | (here > after))
        if not out.any():
            break
        off = np.abs(here - (before + after) / 2)
        prev_worse = np.concatenate([[False], out[:-1] & (off[:-1] >= off[1:])])
        next_worse = np.concatenate([out[1:] & (off[1:] > off[:-1]), [False]])
        trusted[use[1:-1][out & ~prev_worse & ~next_worse]] = False
    return trusted


def restore_lost_wraps(time_s: F64 | None, t_all: F64, is_marker: Mask, notes: list[str]) -> F64:
    """Add whole counter wraps the 16-bit stamp cannot show, using the log's Time field.

    Between two records the whole number of wraps is round((dTime - dstamp) /
    0.65536); sub-wrap jitter between the two clocks rounds to zero. A Time value
    out of order with its neighbours (damage an 8-bit checksum missed) is not
    used: it would add a wrap for every 0.655 s it is off. The wraps between two
    trusted values are spread evenly over the records between them.
    """
    rec_pos = np.flatnonzero(~is_marker)
    if time_s is None or rec_pos.size < 2:
        return t_all
    use = np.flatnonzero(_trusted_times(time_s))
    if use.size < 2:
        return t_all
    t_rec = t_all[rec_pos]
    d_time = np.diff(time_s[use])
    d_stamp = np.diff(t_rec[use])
    lost = np.where(d_time >= 0, np.rint((d_time - d_stamp) / WRAP_S), 0.0).clip(min=0.0)
    if not lost.any():
        return t_all
    i = np.arange(rec_pos.size)
    j = np.clip(np.searchsorted(use, i, side="right") - 1, 0, use.size - 2)
    share = np.clip((i - use[j]) / (use[j + 1] - use[j]), 0.0, 1.0)
    wraps = np.concatenate([[0.0], np.cumsum(lost)])[j] + np.rint(lost[j] * share)
    step = np.zeros(t_all.size)
    step[rec_pos] = np.diff(wraps, prepend=0.0) * WRAP_S
    notes.append(f"{int(lost.sum())} timestamp wraps restored from the Time field")
    return t_all + np.cumsum(step)


def recount_long_gaps(spans: list[DamagedSpan], t_rec: F64, notes: list[str]) -> list[DamagedSpan]:
    """Correct each damaged span's lost-record count with the time across it.

    The rolling counter says how many blocks were lost modulo 256; where the
    time across the gap (wraps restored from the Time field, when the log has
    one) holds hundreds more typical intervals, the count takes the whole rounds.
    A counter that jumps with no bytes skipped and no time lost restarted its
    count: a note, nothing lost.
    """
    typical = float(np.median(np.diff(t_rec))) if t_rec.size > 2 else 0.0
    out = []
    for span in spans:
        i = span.records_before
        if typical <= 0 or not 0 < i < t_rec.size:
            out.append(span)
            continue
        by_time = (t_rec[i] - t_rec[i - 1]) / typical - 1.0
        if span.counter_jump and by_time < 0.5:
            notes.append(f"byte {span.at}: {span.why}; the count restarted there, nothing lost")
            continue
        rounds = round((by_time - span.lost_records) / 256)
        if rounds > 0:
            span = replace(span, lost_records=span.lost_records + 256 * rounds)
        out.append(span)
    return out
