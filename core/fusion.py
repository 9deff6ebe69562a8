"""Fusion: blocks from several sources -> one stream of time-aligned rows.

Decisions:
- Every incoming sample becomes one fused row (the union of all sources'
  timestamps). Each channel a row's own block does not carry is filled from the
  latest value any earlier block gave for it (zero-order hold), and becomes NaN
  once that value is older than the channel's staleness limit: a stale reading is
  never silently reused.
- The wideband sees the exhaust of a combustion event ``lambda_delay_s`` later,
  so the mixture channels are shifted back by that delay: a row at time ``t``
  takes the lambda measured at ``t + delay``. A row is therefore held back until
  the mixture history reaches ``t`` (or until the data clock shows none will come
  in time), then released.
- Rows are processed strictly in block arrival order and released by data time
  only (never by wall clock), so the same block sequence always produces the same
  rows: replaying a recording reproduces the live grid cell for cell.
- Lambda is the canonical mixture channel. A source that only gives AFR (or an
  AFR target) is converted with the configured stoichiometric ratio, and AFR is
  always re-derived from lambda so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.channels import CHANNELS, STOICH_GASOLINE
from core.frames import F64, Block

FUSED_SOURCE = "fused"
_MIXTURE = "lambda"
_DEFAULT_STALE_S = 1.0
_TIME_EPS_S = 1e-9
"""Tolerance for time comparisons: t - delay is not exact in floating point."""


class Fuser:
    """Zero-order-hold fusion with lambda transport-delay alignment.

    Args:
        lambda_delay_s: Exhaust transport delay from combustion to the wideband.
        stoich: Stoichiometric AFR used to convert AFR <-> lambda.
        stale_s: Per-channel staleness overrides (seconds); defaults come from
            ``core.channels.CHANNELS``.
        expect_mixture: A source in the session delivers lambda/AFR, so rows wait
            for it from the first sample instead of being released without it.
    """

    def __init__(
        self,
        lambda_delay_s: float = 0.0,
        stoich: float = STOICH_GASOLINE,
        stale_s: Mapping[str, float] | None = None,
        *,
        expect_mixture: bool = False,
    ) -> None:
        self.lambda_delay_s = float(lambda_delay_s)
        self.stoich = float(stoich)
        self._stale_overrides = dict(stale_s or {})
        self._held: dict[str, tuple[float, float]] = {}
        """channel -> (time, value) of the latest sample seen, for zero-order hold."""
        self._channels: dict[str, None] = {}
        """Every non-mixture channel seen so far, in first-seen order."""
        self._mix_t = np.empty(0)
        """Mixture history times, already shifted back by the delay."""
        self._mix_v = np.empty(0)
        self._expect_mixture = expect_mixture
        self._seen_mixture = expect_mixture
        self._newest_t = -np.inf
        self._pending_t = np.empty(0)
        self._pending: dict[str, F64] = {}

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
        )

    @property
    def channels(self) -> tuple[str, ...]:
        """Channels fused rows carry (mixture last)."""
        names = tuple(self._channels)
        return (*names, "lambda", "afr") if self._seen_mixture else names

    def push(self, block: Block) -> Block | None:
        """Add one source block; returns the rows that became complete, if any."""
        if len(block) == 0:
            return None
        cols = dict(block.columns)
        self._normalise_mixture(cols)
        lam = cols.pop(_MIXTURE, None)
        cols.pop("afr", None)
        if lam is not None:
            self._seen_mixture = True
            self._append_mixture(block.t, lam)
        self._newest_t = max(self._newest_t, float(block.t[-1]))
        self._append_rows(block.t, cols)
        return self._release(final=False)

    def flush(self) -> Block | None:
        """Release every pending row (end of stream); missing lambda is NaN."""
        return self._release(final=True)

    # -- internals -------------------------------------------------------------

    def _normalise_mixture(self, cols: dict[str, F64]) -> None:
        if _MIXTURE not in cols and "afr" in cols:
            cols[_MIXTURE] = cols["afr"] / self.stoich
        if "lambda_target" not in cols and "afr_target" in cols:
            cols["lambda_target"] = cols["afr_target"] / self.stoich
        if "lambda_target" in cols:
            cols["afr_target"] = cols["lambda_target"] * self.stoich

    def _append_mixture(self, t: F64, lam: F64) -> None:
        shifted = t - self.lambda_delay_s
        if self._mix_t.size and shifted[0] < self._mix_t[-1]:
            # A second wideband or out-of-order block: keep the history sorted.
            all_t = np.concatenate([self._mix_t, shifted])
            all_v = np.concatenate([self._mix_v, lam])
            order = np.argsort(all_t, kind="stable")
            self._mix_t, self._mix_v = all_t[order], all_v[order]
        else:
            self._mix_t = np.concatenate([self._mix_t, shifted])
            self._mix_v = np.concatenate([self._mix_v, lam])

    def _append_rows(self, t: F64, cols: dict[str, F64]) -> None:
        n = t.size
        for name in cols:
            if name not in self._channels:
                self._channels[name] = None
                self._pending[name] = np.full(self._pending_t.size, np.nan)
        for name in self._channels:
            own = cols.get(name)
            if own is None:
                held = self._held.get(name)
                if held is None:
                    values = np.full(n, np.nan)
                else:
                    held_t, held_v = held
                    fresh = (t - held_t) <= self.stale_limit(name)
                    values = np.where(fresh, held_v, np.nan)
            else:
                values = own
            self._pending[name] = np.concatenate([self._pending[name], values])
        self._pending_t = np.concatenate([self._pending_t, t])
        for name, values in cols.items():
            self._held[name] = (float(t[-1]), float(values[-1]))

    def _release(self, *, final: bool) -> Block | None:
        t = self._pending_t
        if t.size == 0:
            return None
        if final or not self._seen_mixture:
            ready = np.ones(t.size, dtype=bool)
        else:
            mix_latest = self._mix_t[-1] if self._mix_t.size else -np.inf
            give_up = self._newest_t - self.lambda_delay_s - self.stale_limit(_MIXTURE)
            ready = (t <= mix_latest + _TIME_EPS_S) | (t < give_up)
        if not ready.any():
            return None
        out_t = t[ready]
        out = {name: values[ready] for name, values in self._pending.items()}
        if self._seen_mixture:
            lam = self._lookup_mixture(out_t)
            out["lambda"] = lam
            out["afr"] = lam * self.stoich
        keep = ~ready
        self._pending_t = t[keep]
        self._pending = {name: values[keep] for name, values in self._pending.items()}
        self._trim_history()
        return Block(FUSED_SOURCE, out_t, out)

    def _lookup_mixture(self, t: F64) -> F64:
        if self._mix_t.size == 0:
            return np.full(t.size, np.nan)
        idx = np.searchsorted(self._mix_t, t + _TIME_EPS_S, side="right") - 1
        valid = idx >= 0
        idx_c = np.clip(idx, 0, None)
        age = t - self._mix_t[idx_c]
        valid &= age <= self.stale_limit(_MIXTURE)
        return np.where(valid, self._mix_v[idx_c], np.nan)

    def _trim_history(self) -> None:
        if self._mix_t.size < 4096:
            return
        horizon = self._pending_t.min() if self._pending_t.size else self._newest_t
        horizon -= self.lambda_delay_s + self.stale_limit(_MIXTURE) + 1.0
        cut = int(np.searchsorted(self._mix_t, horizon, side="left"))
        cut = min(cut, self._mix_t.size - 1)
        if cut > 0:
            self._mix_t = self._mix_t[cut:]
            self._mix_v = self._mix_v[cut:]
