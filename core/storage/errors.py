"""The vehicle store's errors: one message for people, never a traceback.

Decision: a separate module so the low-level parts (database, rows, runs) raise
the same errors as :class:`core.store.VehicleStore` without importing it.
"""

from __future__ import annotations


class StoreError(ValueError):
    """The vehicle store cannot do what was asked. The message is for people."""


class RunRefused(StoreError):
    """Adding the run would shrink coverage the store already holds; nothing was changed."""

    def __init__(self, message: str, *, kept_run: str) -> None:
        super().__init__(message)
        self.kept_run = kept_run
        """The stored run that stays as it was (the run itself, or the live run that
        already counts a replayed segment): the summary names it."""
