"""ipywidgets apps over a run. They call the package's functions and compute nothing themselves."""

from __future__ import annotations

import pandas as pd

from ..analysis.outcomes import OUTCOMES, outcomes
from ..analysis.slices import SLICES, examples, slice_table, slice_values
from ..views.display import example_html, probe_pair_html
from ..views.figures import render_png
from ..views.plots import plot_slice

__all__ = ['ErrorExplorer', 'ProbeExplorer', 'TransitionExplorer']


def _figure_png(draw, size=(7.5, 3.4), margins: dict | None = None) -> bytes:
    """``draw(ax)`` on one axes, as PNG bytes."""
    return render_png(lambda figure: draw(figure.add_subplot()), size=size, margins=margins)


def _show_png(image, data: bytes) -> None:
    """Put a PNG in an Image widget at its own pixel size (never stretched to the cell, so never blurry)."""
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk
    with image.hold_sync():
        image.value = data
        image.width, image.height = str(width), str(height)
        image.layout.width, image.layout.height = f"{width}px", f"{height}px"
        image.layout.max_width = "none"


class ErrorExplorer:
    """Pick a slice, a bucket and an outcome; see the count, the metrics, the slice's plot, and
    page through the matching examples (most confident first).

    Example::

        ErrorExplorer(run)          # in a notebook cell: displays itself
    """

    def __init__(self, run, n_boot: int = 200, seed: int = 0):
        import ipywidgets as w

        self.run = run
        self.table = outcomes(run.table) if "outcome" not in run.table.columns else run.table
        self.n_boot, self.seed = n_boot, seed
        self._buckets: dict[str, pd.Series] = {}
        self._labels: dict[str, pd.Series] = {}
        self._slice_tables: dict[str, pd.DataFrame] = {}
        self._plots: dict[str, bytes] = {}
        self.position = 0
        self.matching = self.table.iloc[:0]
        self.listeners = []  # called with the id of each example shown (see AttentionExplorer.follow)

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
        everything = pd.Series(pd.Categorical(["all"] * len(self.table)), index=self.table.index, name="all")
        self.overall = slice_table(self.table, everything, n_boot=n_boot, seed=seed).iloc[0]
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
            self._plots[name] = _figure_png(lambda ax: plot_slice(frame, ax=ax))
        _show_png(self.plot, self._plots[name])
        options = ["(all)"] + list(frame["bucket"])
        with self.bucket.hold_trait_notifications():
            self.bucket.options = options
            self.bucket.value = "(all)"
        self._on_filter()

    def _on_filter(self):
        bucket = self.bucket.value if self.bucket.value not in (None, "(all)") else None
        outcome = {"(all)": None, "(all errors)": "errors"}.get(self.outcome.value, self.outcome.value)
        self.matching = examples(self.table, outcome=outcome, by=self.buckets(self.slice.value) if bucket else None,
                                 bucket=bucket)
        self._update_summary()
        self.show(0)

    def _update_summary(self):
        frame = self.slice_frame(self.slice.value).set_index("bucket")
        row = frame.loc[self.bucket.value] if self.bucket.value not in (None, "(all)") else self.overall

        def pct(value):
            return "–" if pd.isna(value) else f"{value:.1f}"

        self.summary.value = (
            f"<b>{len(self.matching)}</b> matching question(s) · bucket: {int(row['count'])} questions, "
            f"EM {pct(row['EM'])} / F1 {pct(row['F1'])} (95% CI {pct(row['F1_low'])}–{pct(row['F1_high'])}) · "
            f"answerable {int(row['HasAns_count'])}: F1 {pct(row['HasAns_F1'])} · "
            f"unanswerable {int(row['NoAns_count'])}: F1 {pct(row['NoAns_F1'])}")

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
        for listener in self.listeners:
            listener(row["id"])


class _FollowsQuestions:
    """What the per-question explorers share: a ``question`` dropdown over ``table`` (indexed by id)."""

    def show_question(self, qid: str):
        """Show question ``qid`` (e.g. the one the ErrorExplorer is showing)."""
        if qid not in self.table.index:
            raise KeyError(f"no question with id {qid!r} in this run")
        if qid not in [value for _, value in self.question.options]:
            self.question.options = [(f"{qid}: {self.table.loc[qid, 'question'][:70]}", qid), *self.question.options]
        self.question.value = qid

    def follow(self, error_explorer) -> None:
        """Show whatever question the ErrorExplorer shows, as it pages through examples."""
        error_explorer.listeners.append(self.show_question)
        if error_explorer.current_id is not None:
            self.show_question(error_explorer.current_id)


class TransitionExplorer:
    """Pick a cell of the outcome transition matrix (outcome under A, outcome under B) and list
    its questions, e.g. those the teacher answers correctly and the student abstains on."""

    def __init__(self, comparison, rows: int = 20):
        import ipywidgets as w

        self.comparison = comparison
        self.rows = rows
        counts = comparison.transitions
        present_a = [o for o in OUTCOMES if counts.loc[o].sum() > 0]
        present_b = [o for o in OUTCOMES if counts[o].sum() > 0]
        a, b = comparison.labels
        self.outcome_a = w.Dropdown(options=present_a, description=a)
        self.outcome_b = w.Dropdown(options=present_b, description=b)
        self.listing = w.HTML()
        for control in (self.outcome_a, self.outcome_b):
            control.observe(lambda _: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.outcome_a, self.outcome_b]), self.listing])
        self.redraw()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def redraw(self):
        picked = self.comparison.cell(self.outcome_a.value, self.outcome_b.value)
        a, b = self.comparison.labels
        shown = picked.head(self.rows).rename(columns={"answer_a": f"{a} answer", "answer_b": f"{b} answer",
                                                       "f1_a": f"{a} F1", "f1_b": f"{b} F1"})
        self.listing.value = (f"<b>{len(picked)}</b> question(s): {a} {self.outcome_a.value}, "
                              f"{b} {self.outcome_b.value}" + shown.to_html(index=False, float_format="%.2f"))


class ProbeExplorer:
    """Pick a probe and whether its expectation was met; page through the probed questions beside
    their originals (what was removed struck through, what was added in green), with the
    consistency chart above.

    Example::

        ProbeExplorer(load_probes("runs/probes-demo"))
    """

    def __init__(self, results: pd.DataFrame, n_boot: int = 1000, seed: int = 0):
        import ipywidgets as w

        from ..analysis.probes.summary import probe_summary
        from ..views.plots import plot_probe_consistency

        self.results = results
        self.summary_frame = probe_summary(results, n_boot=n_boot, seed=seed)
        present = self.summary_frame[self.summary_frame["n"] > 0]
        self.position = 0
        self.matching = results.iloc[:0]
        self.probe = w.Dropdown(options=[(f"{p} ({n})", p) for p, n in zip(present["probe"], present["n"])],
                                description="probe", layout=w.Layout(width="26em"))
        self.met = w.Dropdown(options=[("expectation not met", False), ("expectation met", True), ("all", None)],
                              value=False, description="show")
        self.outcome = w.Dropdown(options=["(all)"] + OUTCOMES, value="(all)", description="originally")
        self.previous_button = w.Button(description="◀ previous")
        self.next_button = w.Button(description="next ▶")
        self.summary = w.HTML()
        self.plot = w.Image(format="png")
        self.example = w.HTML()
        for control in (self.probe, self.met, self.outcome):
            control.observe(lambda _: self._on_filter(), names="value")
        self.previous_button.on_click(lambda _: self.show(self.position - 1))
        self.next_button.on_click(lambda _: self.show(self.position + 1))
        _show_png(self.plot, _figure_png(lambda ax: plot_probe_consistency(self.summary_frame, ax=ax),
                                         size=(9.5, 0.42 * len(present) + 1.5)))
        self.widget = w.VBox([self.plot, w.HBox([self.probe, self.met, self.outcome]), self.summary,
                              w.HBox([self.previous_button, self.next_button]), self.example])
        self._on_filter()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _on_filter(self):
        from ..analysis.probes.summary import probe_examples

        if self.probe.value is None:
            self.matching = self.results.iloc[:0]
            self.summary.value = "<i>no probe applied to these questions</i>"
        else:
            outcome = None if self.outcome.value == "(all)" else self.outcome.value
            self.matching = probe_examples(self.results, probe=self.probe.value, met=self.met.value,
                                           original_outcome=outcome)
            row = self.summary_frame.set_index("probe").loc[self.probe.value]
            self.summary.value = (f"<b>{len(self.matching)}</b> matching · {self.probe.value}: expect "
                                  f"<b>{row['expect']}</b>, met {row['consistency']:.1f}% (95% CI {row['low']:.1f}–"
                                  f"{row['high']:.1f}) of {int(row['n'])}, {int(row['skipped'])} skipped")
        self.show(0)

    @property
    def current_id(self) -> str | None:
        return None if self.matching.empty else self.matching.iloc[self.position]["id"]

    def show(self, position: int):
        """Show the probed question at ``position`` among the matching ones (clamped to the list)."""
        if self.matching.empty:
            self.position = 0
            self.example.value = "<i>no probed question matches</i>"
            return
        self.position = max(0, min(position, len(self.matching) - 1))
        self.example.value = (f"<div>question {self.position + 1} of {len(self.matching)}</div>"
                              + probe_pair_html(self.matching.iloc[self.position]))
