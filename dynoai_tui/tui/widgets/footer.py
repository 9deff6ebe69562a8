"""The footer: Textual's, showing only the keys that fit whole.

Textual's footer lays its keys out in a row and clips the row at the screen's edge, so at
80 columns a replay's footer ended "g Pull" (QA). The keys are listed by priority (the
app's ``BINDINGS``: quit first, then a replay's own keys, then the rest), so the ones that
do not fit whole are left out from the end; ``?`` lists every key.
"""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class FittingFooter(Footer):
    """A footer that leaves out, whole, the keys past its width (the last ones first)."""

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self.fit)

    def on_resize(self) -> None:
        self.fit()

    def watch_compact(self) -> None:
        self.call_after_refresh(self.fit)  # the keys' widths change with the style

    def watch_show_command_palette(self) -> None:
        self.call_after_refresh(self.fit)

    def fit(self) -> None:
        """Show the keys, in order, while each fits whole; leave out the rest."""
        keys = list(self.query(FooterKey))
        palette = [k for k in keys if k.has_class("-command-palette")]
        room = self.size.width - sum(self._width(k) for k in palette)
        used = 0
        fits = True
        for key in keys:
            if key in palette:
                continue
            used += self._width(key)
            fits = fits and used <= room
            key.display = fits

    @staticmethod
    def _width(key: FooterKey) -> int:
        """Cells the key takes in the row: its text with its padding, and its margins."""
        margin = key.styles.margin
        return key.render().cell_len + margin.left + margin.right
