"""Suite-wide settings.

The candidate simulations are not read from or stored in the user's disk cache
(``sim.diskcache``): every test process starts cold, as each did before the cache, and
the suite leaves nothing behind. ``tests/test_diskcache.py`` points it at a temporary
directory where it tests the cache itself.
"""

from __future__ import annotations

import os

os.environ["DYNOAI_CACHE_DIR"] = "off"
