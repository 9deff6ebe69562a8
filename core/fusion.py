"""Fusion: blocks from several sources -> one stream of time-aligned rows.

Decisions:
- Every sample that carries engine state (any channel other than the mixture)
  becomes one fused row. A wideband's lambda-only samples make no rows of their
  own: they are looked up by time, so a 12 Hz wideband beside a 100 Hz ECU does not
  add 12 rows a second of held ECU values.
- Every channel of a row is the latest value of that channel *by sample time* at or
  before the row (zero-order hold over each channel's time history), and NaN once
  that value is older than the channel's staleness limit: a stale reading is never
  silently reused. Because values are looked up by time, not by arrival order, the
  rows do not depend on how the blocks of several sources interleaved on the way in:
  a live session, its replay and a re-bin of its recording give the same rows.
- Rows are released in time order once every expected source has reported past
  them (the watermark), or once they are older than the newest data by more than
  the longest staleness limit (a silent source cannot stall the engine).
- The watermark is kept per channel set of a source (a *stream*), not per source.
  A source with several channel sets (an ELM327 polling its PIDs in two requests,
  a CAN bus with a message per set) hands over one block per set, and a recording
  keeps each set in records of its own of up to 250 ms: a replay delivers a quarter
  second of one set before the same quarter second of the other. Per source, the
  first set's rows were released before the other set's samples for those times
  had come, out of time order with the rows released after them, and the filters
  (throttle rate, hold-offs, dwell) judged them differently: one ELM run binned
  0 samples live and 5 in its replay. A stream silent for
  :data:`STREAM_SILENT_S` while its source goes on (a PID group dropped, a
  one-off reply missing a PID) stops holding rows back; the recorder starts a new
  batch of records when such a stream (or a new one) speaks again, so a replay
  meets it where live did (``core.record.writer``).
- The wideband sees the exhaust of a combustion event ``lambda_delay_s`` later,
  so the mixture channels are shifted back by that delay: a row at time ``t``
  takes the lambda measured at ``t + delay``. A row is therefore held back until
  the mixture history reaches ``t`` (or until the data clock shows none will come
  in time).
- Rows are released by data time only (never by wall clock).
- Lambda is the canonical mixture channel. A source that only gives AFR (or an
  AFR target) is converted with the configured stoichiometric ratio, and AFR is
  always re-derived from lambda so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from core.channels import CHANNELS, STOICH_GASOLINE
from core.frames import F64, Block

FUSED_SOURCE = "fused"
_MIXTURE = "lambda"
_DEFAULT_STALE_S = 1.0
_TIME_EPS_S = 1e-9
"""Tolerance for time comparisons: t - delay is not exact in floating point."""
_MIN_ROOM = 4096
"""Samples a channel's history buffers hold at least (32 kB each)."""
STREAM_SILENT_S = 0.5
"""A channel set whose source has sent other sets for this long without it no longer
holds rows back (data seconds). Longer than an ELM327's poll cycle of its groups."""


class _History:
    """One channel's (time, value) samples, kept sorted by time and trimmed.

    Held in buffers with room to grow: a sample block is written in place and a
    trim moves the start, so the buffers are reallocated only when they fill (then
    the live part moves to the front, or to buffers half as big again). Concatenating
    on every block reallocated each channel's whole history (~16 s, ~128 kB at 1 kHz)
    33 times a second; those blocks of ever-changing size were the heap churn behind
    the 1-kHz soak's growing heap (issue 10), and the copying cost time too.
    """

    __slots__ = ("_t", "_v", "_lo", "_hi")

    def __init__(self) -> None:
        self._t = np.empty(0)
        self._v = np.empty(0)
        self._lo = 0
        self._hi = 0

    @property
    def t(self) -> F64:
        return self._t[self._lo : self._hi]

    @property
    def v(self) -> F64:
        return self._v[self._lo : self._hi]

    def add(self, t: F64, v: F64) -> None:
        if self._hi > self._lo and t[0] < self._t[self._hi - 1]:
            # A second source of the channel or an out-of-order block: keep it sorted.
            all_t, all_v = np.concatenate([self.t, t]), np.concatenate([self.v, v])
            order = np.argsort(all_t, kind="stable")
            self._lo = self._hi = 0
            self._reserve(order.size)
            self._t[: order.size] = all_t[order]
            self._v[: order.size] = all_v[order]
            self._hi = order.size
            return
        n = int(t.size)
        self._reserve(n)
        self._t[self._hi : self._hi + n] = t
        self._v[self._hi : self._hi + n] = v
        self._hi += n

    def _reserve(self, n: int) -> None:
        """Room for ``n`` more samples after the live ones."""
        if self._hi + n <= self._t.size:
            return
        live = self._hi - self._lo
        need = live + n
        if need <= self._t.size and self._t.size <= max(_MIN_ROOM, 4 * need):
            # room enough once the trimmed start is reclaimed: move the live part down
            self._t[:live] = self._t[self._lo : self._hi]
            self._v[:live] = self._v[self._lo : self._hi]
        else:
            size = max(_MIN_ROOM, need + need // 2)
            new_t, new_v = np.empty(size), np.empty(size)
            new_t[:live] = self._t[self._lo : self._hi]
            new_v[:live] = self._v[self._lo : self._hi]
            self._t, self._v = new_t, new_v
        self._lo, self._hi = 0, live

    def at(self, t: F64, stale_s: float) -> F64:
        """The latest value at or before each time, NaN where none or older than ``stale_s``."""
        if self.t.size == 0:
            return np.full(t.size, np.nan)
        idx = np.searchsorted(self.t, t + _TIME_EPS_S, side="right") - 1
        valid = idx >= 0
        idx_c = np.clip(idx, 0, None)
        valid &= (t - self.t[idx_c]) <= stale_s
        return np.where(valid, self.v[idx_c], np.nan)

    def trim(self, before_t: float) -> None:
        """Drop samples before ``before_t``, keeping the last one before it (the hold)."""
        live = self._hi - self._lo
        if live < 1024:
            return
        cut = int(np.searchsorted(self.t, before_t, side="left")) - 1
        cut = min(cut, live - 1)
        if cut > 0:
            self._lo += cut


class Fuser:
    """Zero-order-hold fusion by sample time, with lambda transport-delay alignment.

    Args:
        lambda_delay_s: Exhaust transport delay from combustion to the wideband.
        stoich: Stoichiometric AFR used to convert AFR <-> lambda.
        stale_s: Per-channel staleness overrides (seconds); defaults come from
            ``core.channels.CHANNELS``.
        expect_mixture: A source in the session delivers lambda/AFR, so rows wait
            for it from the first sample instead of being released without it.
        sources: Sources expected to deliver engine-state channels (not only the
            mixture); rows wait until each has reported past them. Sources seen in
            blocks are added as they come.
    """

    def __init__(
        self,
        lambda_delay_s: float = 0.0,
        stoich: float = STOICH_GASOLINE,
        stale_s: Mapping[str, float] | None = None,
        *,
        expect_mixture: bool = False,
        sources: Sequence[str] = (),
    ) -> None:
        self.lambda_delay_s = float(lambda_delay_s)
        self.stoich = float(stoich)
        self._stale_overrides = dict(stale_s or {})
        self._expect_mixture = expect_mixture
        self._expected_sources = tuple(sources)
        self._hist: dict[str, _History] = {}
        """Every non-mixture channel seen so far, in first-seen order, with its history."""
        self._mix = _History()
        """Mixture history, times already shifted back by the delay."""
        self._seen_mixture = expect_mixture
        self._src_latest: dict[str, float] = dict.fromkeys(self._expected_sources, -np.inf)
        self._streams: dict[tuple[str, tuple[str, ...]], tuple[float, bool, bool]] = {}
        """(source, channel set) -> (newest sample time, carries engine state, carries mixture)."""
        self._src_newest: dict[str, float] = {}
        self._newest_t = -np.inf
        self._pending_t: list[F64] = []
        self._give_up_s = _DEFAULT_STALE_S

    def stale_limit(self, channel: str) -> float:
        if channel in self._stale_overrides:
            return self._stale_overrides[channel]
        info = CHANNELS.get(channel)
        return info.stale_s if info is not None else _DEFAULT_STALE_S

    def reset(self) -> None:
        self.__init__(  # type: ignore[misc]
            self.lambda_delay_s,
            self.stoich,
            self._stale_overrides,
            expect_mixture=self._expect_mixture,
            sources=self._expected_sources,
        )

    @property
    def channels(self) -> tuple[str, ...]:
        """Channels fused rows carry (mixture last)."""
        names = tuple(self._hist)
        return (*names, "lambda", "afr") if self._seen_mixture else names

    @property
    def pending_rows(self) -> int:
        """Rows fused from samples already in but not released yet (waiting for later data)."""
        return sum(int(p.size) for p in self._pending_t)

    def push(self, block: Block, *, stream: tuple[str, ...] | None = None) -> Block | None:
        """Add one source block; returns the rows that became complete, if any.

        ``stream`` names the block's channel set (default: its columns); the pipeline
        passes the set as the source sent it, before channel ownership dropped some.
        """
        if len(block) == 0:
            return None
        self._note_stream(block, stream)
        cols = dict(block.columns)
        self._normalise_mixture(cols)
        lam = cols.pop(_MIXTURE, None)
        cols.pop("afr", None)
        if lam is not None:
            self._seen_mixture = True
            self._mix.add(block.t - self.lambda_delay_s, lam)
        self._newest_t = max(self._newest_t, float(block.t[-1]))
        if cols:
            for name, values in cols.items():
                hist = self._hist.get(name)
                if hist is None:
                    hist = self._hist[name] = _History()
                    self._give_up_s = max(self._give_up_s, self.stale_limit(name))
                hist.add(block.t, values)
            self._pending_t.append(block.t)
            latest = self._src_latest.get(block.source, -np.inf)
            self._src_latest[block.source] = max(latest, float(block.t[-1]))
        return self._release(final=False)

    def flush(self) -> Block | None:
        """Release every pending row (end of stream); missing lambda is NaN."""
        return self._release(final=True)

    # -- internals -------------------------------------------------------------

    def _note_stream(self, block: Block, stream: tuple[str, ...] | None) -> None:
        names = set(block.columns)
        key = (block.source, tuple(sorted(stream if stream is not None else names)))
        last_t = float(block.t[-1])
        engine = bool(names - {_MIXTURE, "afr"})
        mixture = bool(names & {_MIXTURE, "afr"})
        before = self._streams.get(key)
        if before is not None:
            last_t = max(last_t, before[0])
        self._streams[key] = (last_t, engine, mixture)
        self._src_newest[block.source] = max(self._src_newest.get(block.source, -np.inf), last_t)

    def _stream_bound(self, *, mixture: bool) -> float:
        """The earliest newest-sample time over the streams that still hold rows back."""
        bound = np.inf
        for (source, _), (last_t, engine, mix) in self._streams.items():
            if (mix if mixture else engine) and self._src_newest[source] - last_t < STREAM_SILENT_S:
                bound = min(bound, last_t)
        return bound

    def _normalise_mixture(self, cols: dict[str, F64]) -> None:
        if _MIXTURE not in cols and "afr" in cols:
            cols[_MIXTURE] = cols["afr"] / self.stoich
        if "lambda_target" not in cols and "afr_target" in cols:
            cols["lambda_target"] = cols["afr_target"] / self.stoich
        if "lambda_target" in cols:
            cols["afr_target"] = cols["lambda_target"] * self.stoich

    def _release(self, *, final: bool) -> Block | None:
        if not self._pending_t:
            return None
        t = self._pending_t[0] if len(self._pending_t) == 1 else np.concatenate(self._pending_t)
        if final:
            ready = np.ones(t.size, dtype=bool)
        else:
            watermark = min(min(self._src_latest.values()), self._stream_bound(mixture=False))
            ready = (t <= watermark + _TIME_EPS_S) | (t < self._newest_t - self._give_up_s)
            if self._seen_mixture:
                mix_latest = self._mix.t[-1] if self._mix.t.size else -np.inf
                mix_latest = min(mix_latest, self._stream_bound(mixture=True) - self.lambda_delay_s)
                give_up = self._newest_t - self.lambda_delay_s - self.stale_limit(_MIXTURE)
                ready &= (t <= mix_latest + _TIME_EPS_S) | (t < give_up)
        if not ready.any():
            self._pending_t = [t]
            return None
        out_t = np.sort(t[ready], kind="stable")
        self._pending_t = [t[~ready]] if not ready.all() else []
        out = {name: hist.at(out_t, self.stale_limit(name)) for name, hist in self._hist.items()}
        if self._seen_mixture:
            lam = self._mix.at(out_t, self.stale_limit(_MIXTURE))
            out["lambda"] = lam
            out["afr"] = lam * self.stoich
        self._trim_history(out_t)
        return Block(FUSED_SOURCE, out_t, out)

    def _trim_history(self, released_t: F64) -> None:
        pending_min = min((float(p.min()) for p in self._pending_t if p.size), default=np.inf)
        horizon = min(pending_min, float(released_t[-1])) - self._give_up_s - 1.0
        for hist in self._hist.values():
            hist.trim(horizon)
        self._mix.trim(horizon - self.lambda_delay_s - self.stale_limit(_MIXTURE))
