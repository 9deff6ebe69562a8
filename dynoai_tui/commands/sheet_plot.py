"""PNG and HTML dyno sheets with matplotlib (an optional extra: ``pip install 'dynoai-tui[report]'``).

matplotlib rather than plotly: it writes a PNG with no browser and no network,
which is what a laptop on the dyno has, and the HTML sheet is that PNG inlined
with a table of peaks, one file a customer can open anywhere. It is an optional
extra because the dashboard and headless logging do not need it (it adds
~40 MB with its dependencies); the command says how to install it when absent.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.dynosheet import PullSheet
from dynoai_tui.commands.common import CommandError

NM_PER_LBFT = 1.3558179483314004


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CommandError(
            "PNG/HTML dyno sheets need matplotlib: pip install 'dynoai-tui[report]' "
            "(or use --format text/json)"
        ) from None
    return plt


def figure(pulls: Sequence[PullSheet], *, title: str) -> Any:
    """The sheet as a matplotlib figure: power and torque, AFR, power over drum speed.

    The legend of the pulls sits under the plots, not on them: in the power plot's
    corner it covered the torque curve (drawn on the twin axis, which
    ``loc="best"`` does not see), and with many pulls it covered more.
    """
    plt = _pyplot()
    drum = any(np.isfinite(p.drum_kph).any() for p in pulls)
    rows, ratios = (3, [3, 1.3, 1.6]) if drum else (2, [3, 1.3])
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(10, 9.5 if drum else 7.5),
        gridspec_kw={"height_ratios": ratios},
        layout="constrained",
    )
    ax_p, ax_a = axes[0], axes[1]
    ax_a.sharex(ax_p)
    ax_d = axes[2] if drum else None
    ax_t = ax_p.twinx()
    last = len(pulls) - 1
    for i, p in enumerate(pulls):
        alpha, lw = (1.0, 2.2) if i == last else (0.45, 1.2)
        hp, hp_rpm = p.peak("power_hp")
        nm, nm_rpm = p.peak("torque_nm")
        label = f"pull {p.index}" + (" (cut short)" if p.cut_short else "")
        if hp is not None and nm is not None:
            label += f": {hp:.1f} hp @ {hp_rpm:.0f}, {nm:.1f} N·m @ {nm_rpm:.0f}"
        ax_p.plot(p.rpm, p.power_hp, color="tab:red", alpha=alpha, lw=lw, label=label)
        ax_t.plot(p.rpm, p.torque_nm, color="tab:blue", alpha=alpha, lw=lw, ls="--")
        ax_a.plot(p.rpm, p.afr, color="tab:green", alpha=alpha, lw=lw)
        if ax_d is not None:
            ax_d.plot(p.drum_kph, p.power_hp, color="tab:red", alpha=alpha, lw=lw)
        if i == last and hp is not None:
            ax_p.annotate(f"{hp:.1f} hp", (hp_rpm, hp), textcoords="offset points", xytext=(0, 6))
    ax_p.set_ylabel("power, hp (solid)", color="tab:red")
    ax_t.set_ylabel("torque, N·m (dashed)", color="tab:blue")
    ax_a.set_ylabel("AFR")
    ax_a.set_xlabel("engine speed, rpm")
    ax_p.grid(alpha=0.3)
    ax_p.margins(y=0.1)  # room for the peak's label inside the plot
    ax_a.grid(alpha=0.3)
    handles, labels = ax_p.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(2, len(labels)), fontsize=8)
    if ax_d is not None:
        ax_d.set_xlabel("drum speed, km/h")
        ax_d.set_ylabel("power, hp")
        ax_d.grid(alpha=0.3)
    p = pulls[last]
    smoothing = f"smoothing {p.smoothing_rpm:.0f} rpm" if p.smoothing_rpm else "not smoothed"
    fig.suptitle(f"{title}\n{p.correction.describe()} · {smoothing}", fontsize=9)
    return fig


def figure_png(pulls: Sequence[PullSheet], *, title: str) -> bytes:
    """The sheet as PNG bytes (see :func:`figure`)."""
    plt = _pyplot()
    fig = figure(pulls, title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def html_page(pulls: Sequence[PullSheet], *, title: str) -> str:
    """One self-contained HTML page: the plot inlined as PNG plus a table of peaks.

    The caller writes it (``write_output_file``: one error line for a bad path).
    """
    png = base64.b64encode(figure_png(pulls, title=title)).decode("ascii")
    rows = []
    for p in pulls:
        hp, hp_rpm = p.peak("power_hp")
        nm, nm_rpm = p.peak("torque_nm")
        afr = p.afr[np.isfinite(p.afr)]
        cells = [
            str(p.index),
            f"{p.rpm[0]:.0f}–{p.rpm[-1]:.0f}",
            "--" if hp is None else f"{hp:.1f} hp @ {hp_rpm:.0f}",
            "--" if nm is None else f"{nm:.1f} N·m ({nm / NM_PER_LBFT:.1f} lb·ft) @ {nm_rpm:.0f}",
            f"{afr.min():.1f}–{afr.max():.1f}" if afr.size else "--",
            p.correction.describe(),
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}</style></head>
<body><h1>{html.escape(title)}</h1>
<img alt="power, torque and AFR vs rpm" src="data:image/png;base64,{png}">
<table><tr><th>pull</th><th>rpm</th><th>peak power</th><th>peak torque</th><th>AFR</th>
<th>correction</th></tr>
{"".join(rows)}
</table></body></html>
"""
    return doc
