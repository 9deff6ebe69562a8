"""Vehicle configuration: one typed source of truth, loaded from TOML.

(Being written by the lead. ``ConfigError`` is the pinned error type: every bad
config value raises it with a message naming the key and the reason.)
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad configuration value. The message names the key and says what is wrong."""
