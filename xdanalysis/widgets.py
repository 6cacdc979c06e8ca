"""ipywidgets apps over a run. They call the package's functions and compute nothing themselves."""

from __future__ import annotations

import io

import pandas as pd

from .display import example_html
from .errors import OUTCOMES, SLICES, outcomes, slice_table, slice_values

__all__ = ["ErrorExplorer"]


def _figure_png(draw) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 3.4))
    draw(figure.add_subplot())
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class ErrorExplorer:
    """Pick a slice, a bucket and an outcome; see the count, the metrics, the slice's plot, and
    page through the matching examples (most confident first).

    Example::

        ErrorExplorer(run)          # in a notebook cell: displays itself
    """

    def __init__(self, run, n_boot: int = 200, seed: int = 0):
        import ipywidgets as w

        from .plots import plot_slice

        self.run = run
        self.table = outcomes(run.table) if "outcome" not in run.table.columns else run.table
        self.n_boot, self.seed = n_boot, seed
        self._plot_slice = plot_slice
        self._buckets: dict[str, pd.Series] = {}
        self._labels: dict[str, pd.Series] = {}
        self._slice_tables: dict[str, pd.DataFrame] = {}
        self._plots: dict[str, bytes] = {}
        self.position = 0
        self.matching = self.table.iloc[:0]

        self.slice = w.Dropdown(options=list(SLICES), value="question type", description="slice")
        self.bucket = w.Dropdown(options=["(all)"], value="(all)", description="bucket")
        self.outcome = w.Dropdown(options=["(all)", "(all errors)"] + OUTCOMES, value="(all errors)",
                                  description="outcome")
        self.previous_button = w.Button(description="◀ previous")
        self.next_button = w.Button(description="next ▶")
        self.summary = w.HTML()
        self.plot = w.Image(format="png")
        self.example = w.HTML()
        self.slice.observe(lambda _: self._on_slice(), names="value")
        self.bucket.observe(lambda _: self._on_filter(), names="value")
        self.outcome.observe(lambda _: self._on_filter(), names="value")
        self.previous_button.on_click(lambda _: self.show(self.position - 1))
        self.next_button.on_click(lambda _: self.show(self.position + 1))
        for name in SLICES:  # bucket and score every slice once, up front: updates only filter and draw
            self.bucket_labels(name)
            self.slice_frame(name)
        self.widget = w.VBox([
            w.HBox([self.slice, self.bucket, self.outcome]),
            self.summary,
            self.plot,
            w.HBox([self.previous_button, self.next_button]),
            self.example,
        ])
        self._on_slice()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # Cached per slice: bucket assignment, slice table, plot.
    def buckets(self, name: str) -> pd.Series:
        if name not in self._buckets:
            self._buckets[name] = slice_values(self.table, name).rename(name)
        return self._buckets[name]

    def bucket_labels(self, name: str) -> pd.Series:
        if name not in self._labels:
            self._labels[name] = self.buckets(name).astype(str)
        return self._labels[name]

    def slice_frame(self, name: str) -> pd.DataFrame:
        if name not in self._slice_tables:
            self._slice_tables[name] = slice_table(self.table, self.buckets(name), n_boot=self.n_boot,
                                                   seed=self.seed)
        return self._slice_tables[name]

    def _on_slice(self):
        name = self.slice.value
        frame = self.slice_frame(name)
        if name not in self._plots:
            self._plots[name] = _figure_png(lambda ax: self._plot_slice(frame, ax=ax))
        self.plot.value = self._plots[name]
        options = ["(all)"] + list(frame["bucket"])
        with self.bucket.hold_trait_notifications():
            self.bucket.options = options
            self.bucket.value = "(all)"
        self._on_filter()

    def _on_filter(self):
        mask = pd.Series(True, index=self.table.index)
        if self.bucket.value not in (None, "(all)"):
            mask &= self.bucket_labels(self.slice.value) == self.bucket.value
        if self.outcome.value == "(all errors)":
            mask &= ~self.table["outcome"].isin(["correct", "correct_abstention"])
        elif self.outcome.value != "(all)":
            mask &= self.table["outcome"] == self.outcome.value
        picked = self.table[mask]
        self.matching = picked.iloc[picked["null_odds"].abs().to_numpy().argsort(kind="stable")[::-1]]
        self._update_summary()
        self.show(0)

    def _update_summary(self):
        part = self.table[self.bucket_labels(self.slice.value) == self.bucket.value] \
            if self.bucket.value not in (None, "(all)") else self.table
        has, no = part[part["has_answer"]], part[~part["has_answer"]]

        def pct(frame, column):
            return f"{100 * frame[column].mean():.1f}" if len(frame) else "–"

        self.summary.value = (
            f"<b>{len(self.matching)}</b> matching question(s) · bucket: {len(part)} questions, "
            f"EM {pct(part, 'exact')} / F1 {pct(part, 'f1')} · answerable {len(has)}: F1 {pct(has, 'f1')} · "
            f"unanswerable {len(no)}: F1 {pct(no, 'f1')}")

    @property
    def current_id(self) -> str | None:
        if self.matching.empty:
            return None
        return self.matching.iloc[self.position]["id"]

    def show(self, position: int):
        """Show the example at ``position`` among the matching ones (clamped to the list)."""
        if self.matching.empty:
            self.position = 0
            self.example.value = "<i>no question matches</i>"
            return
        self.position = max(0, min(position, len(self.matching) - 1))
        row = self.matching.iloc[self.position]
        nbest = self.run.nbest.get(row["id"]) if hasattr(self.run, "nbest") else None
        self.example.value = (f"<div>example {self.position + 1} of {len(self.matching)}</div>"
                              + example_html(row, nbest))
