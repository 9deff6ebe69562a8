"""A transport delay line on a ring buffer, exact at any sample rate.

The wideband sits in the exhaust, so it reports at time t the mixture that burned
at t - delay (gas travel plus sensor response, ~90 ms on a bike). The delay is a
float number of samples (90 ms at 1 kHz is 90 samples, at 100 Hz 9, at 30 Hz 2.7);
fractional delays are linearly interpolated between the two neighbouring samples,
so the delay is right at every rate, not rounded to the sample clock.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


class DelayLine:
    """Delay a sampled signal by ``delay_s`` using a fixed-size ring of past samples.

    Before the first sample the line is primed with that sample's value (the engine
    was already running at that mixture), so there is no start-up transient.
    """

    def __init__(self, delay_s: float, rate_hz: float) -> None:
        if delay_s < 0.0:
            raise ValueError(f"lambda transport delay must be >= 0 s, got {delay_s}")
        self.delay_samples = delay_s * rate_hz
        self._whole = math.floor(self.delay_samples)
        self._frac = self.delay_samples - self._whole
        self._capacity = self._whole + 2
        self._ring = np.zeros(self._capacity)
        self._head = 0
        """Index where the next sample will be written."""
        self._primed = False

    def push(self, x: F64) -> F64:
        """Feed a block of new samples; return the delayed samples for the same instants."""
        x = np.asarray(x, dtype=np.float64)
        n = x.size
        if n == 0:
            return x.copy()
        if not self._primed:
            self._ring[:] = x[0]
            self._primed = True
        cap = self._capacity
        # The history (oldest first) followed by the new block is the virtual timeline.
        order = (self._head + np.arange(cap)) % cap
        timeline = np.concatenate((self._ring[order], x))
        # Output k (at timeline index cap + k) reads index cap + k - delay.
        pos = cap + np.arange(n) - self._whole
        out = timeline[pos] * (1.0 - self._frac) + timeline[pos - 1] * self._frac
        # Keep the newest ``cap`` samples in the ring.
        newest = timeline[-cap:]
        idx = (self._head + n + np.arange(cap)) % cap
        self._ring[idx] = newest
        self._head = (self._head + n) % cap
        return out
