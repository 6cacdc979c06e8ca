"""Figures turned into PNG bytes, the one way: for the explorers' Image widgets and the report's
embedded images (no pyplot state, no backend switched)."""

from __future__ import annotations

import io

__all__ = ["png_bytes", "render_png"]


def png_bytes(figure, *, margins: dict | None = None, dpi: int = 80) -> bytes:
    """A drawn matplotlib figure as PNG bytes, nothing clipped. Fixed ``margins`` (``subplots_adjust``
    keywords) skip ``tight_layout``'s extra text rendering, a third of a redraw, and keep the size."""
    if margins:
        figure.subplots_adjust(**margins)
    else:
        figure.tight_layout()
    buffer = io.BytesIO()
    # without fixed margins, the image grows to hold whatever sits outside the axes (legends, long ticks)
    figure.savefig(buffer, format="png", dpi=dpi, **({} if margins else {"bbox_inches": "tight", "pad_inches": 0.08}))
    return buffer.getvalue()


def render_png(draw, *, size=(7.5, 3.4), margins: dict | None = None, dpi: int = 80) -> bytes:
    """``draw(figure)`` on a new figure of ``size`` inches, as PNG bytes.

    >>> render_png(lambda figure: figure.add_subplot().plot([0, 1]), size=(2, 1))[:4]
    b'\\x89PNG'
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    draw(figure)
    return png_bytes(figure, margins=margins, dpi=dpi)
