"""ipywidgets apps over a run. They call the package's functions and compute nothing themselves."""
from __future__ import annotations

import pandas as pd
from ..analysis.error_tree import error_tree
from ..analysis.outcomes import OUTCOMES, outcomes
from ..analysis.causes import with_causes
from ..analysis.slices import (CELL_SEPARATOR, applicable_slices, examples, slice_grid, slice_pair, slice_table,
                               slice_values)
from ..core.stats import MIN_INTERVAL_COUNT, N_BOOT
from ..views.display import example_html, probe_pair_html
from ..views.figures import render_png
from ..views.plots import plot_slice

__all__ = ['CompressionExplorer', 'ErrorExplorer', 'ProbeExplorer', 'TransitionExplorer']


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


def _cell_colour(count: int, ratio: float) -> str:
    """A grid cell's colour, as its legend says: grey under ``MIN_INTERVAL_COUNT`` questions (however its
    errors fall), then red where it holds more of the errors than of the questions.

    >>> _cell_colour(1, 5.0), _cell_colour(40, 1.6), _cell_colour(40, 1.2), _cell_colour(40, 0.9)
    ('#eeeeee', '#f4a582', '#fddbc7', '#f7f7f7')
    """
    if count < MIN_INTERVAL_COUNT:
        return "#eeeeee"
    return "#f4a582" if ratio > 1.5 else "#fddbc7" if ratio > 1.1 else "#f7f7f7"


EVERY = -1  # the tree-leaf dropdown's value for "every question" (a Dropdown shows nothing for None)


class ErrorExplorer:
    """Pick a slice, a bucket and an outcome; see the count, the metrics, the slice's plot, and
    page through the matching examples (most confident first). A second slice shows the grid of
    both (count and share of errors per cell; click a cell to page through it); an error-tree leaf
    (:func:`xdanalysis.analysis.error_tree.error_tree`) narrows the examples to its rule.

    With ``causes`` (SQuAD2-CR's, :func:`~xdanalysis.core.unanswerable.load_unanswerable_causes` or its
    file) the slice ``"unanswerable cause"`` is there, and picked first.

    Example::

        ErrorExplorer(run)          # in a notebook cell: displays itself
        ErrorExplorer(run, causes="../shared/data/squad2-cr/causes-dev.tsv")
    """

    def __init__(self, run, n_boot: int = N_BOOT, seed: int = 0, *, causes=None):
        import ipywidgets as w

        self.run = run
        table = run.table if causes is None else with_causes(run, causes)  # causes: a slice to filter by
        self.table = outcomes(table) if "outcome" not in table.columns else table
        self.n_boot, self.seed = n_boot, seed
        self._buckets: dict[str, pd.Series] = {}
        self._labels: dict[str, pd.Series] = {}
        self._slice_tables: dict[str, pd.DataFrame] = {}
        self._plots: dict[str, bytes] = {}
        self.position = 0
        self.matching = self.table.iloc[:0]
        self.listeners = []  # called with the id of each example shown (see AttentionExplorer.follow)

        self._grids: dict[tuple, pd.DataFrame] = {}
        self._grid_boxes: dict[tuple, object] = {}
        self._pairs: dict[tuple, pd.Series] = {}
        self.cell: tuple | None = None  # (bucket of the slice, bucket of the second slice) clicked in the grid
        names = applicable_slices(self.table)
        self.slice = w.Dropdown(options=names, value="unanswerable cause" if causes is not None else "question type",
                                description="slice")
        self.second = w.Dropdown(options=["(none)"] + names, value="(none)", description="× slice")
        self.tree, self.leaf = self._leaf_dropdown()
        self.grid = w.VBox()
        self.bucket = w.Dropdown(options=["(all)"], value="(all)", description="bucket")
        self.outcome = w.Dropdown(options=["(all)", "(all errors)"] + OUTCOMES, value="(all errors)",
                                  description="outcome")
        self.previous_button = w.Button(description="◀ previous")
        self.next_button = w.Button(description="next ▶")
        self.summary = w.HTML()
        self.plot = w.Image(format="png")
        self.example = w.HTML()
        self.slice.observe(lambda _: self._on_slice(), names="value")
        self.second.observe(lambda _: self._on_second(), names="value")
        self.leaf.observe(lambda _: self._on_filter(), names="value")
        self.bucket.observe(lambda _: self._on_bucket(), names="value")
        self.outcome.observe(lambda _: self._on_filter(), names="value")
        self.previous_button.on_click(lambda _: self.show(self.position - 1))
        self.next_button.on_click(lambda _: self.show(self.position + 1))
        for name in names:  # bucket and score every slice once, up front: updates only filter and draw
            self.bucket_labels(name)
            self.slice_frame(name)
        everything = pd.Series(pd.Categorical(["all"] * len(self.table)), index=self.table.index, name="all")
        self.overall = slice_table(self.table, everything, n_boot=n_boot, seed=seed).iloc[0]
        self.widget = w.VBox([
            w.HBox([self.slice, self.bucket, self.outcome]),
            w.HBox([self.second, self.leaf]),
            self.summary,
            self.plot,
            self.grid,
            w.HBox([self.previous_button, self.next_button]),
            self.example,
        ])
        self._on_slice()

    def _leaf_dropdown(self):
        """The error tree of the run (None when it cannot be cross-fitted) and a dropdown of its leaves."""
        import ipywidgets as w

        try:
            tree = error_tree(self.run if "cause" not in self.table.columns else self.table, seed=self.seed)
            leaves, first = tree.leaves, "(every question)"
        except ValueError as error:  # e.g. one context: nothing to cross-fit on
            tree, leaves, first = None, pd.DataFrame(columns=["leaf"]), f"(no error tree: {error})"
        options = [(first, EVERY)] + [
            (f"{r['rule'][:90]} · n={r['count']} · {r['error_rate']:.0f}% errors, held out "
             f"{r['held_out_error_rate']:.0f}% ({r['verdict']})", int(r["leaf"])) for _, r in leaves.iterrows()]
        return tree, w.Dropdown(options=options, value=EVERY, description="tree leaf", layout=w.Layout(width="60em"),
                                disabled=tree is None)

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

    def pair(self, first: str, second: str) -> pd.Series:
        if (first, second) not in self._pairs:
            self._pairs[(first, second)] = slice_pair(self.table, self.buckets(first), self.buckets(second))
        return self._pairs[(first, second)]

    def grid_frame(self, first: str, second: str) -> pd.DataFrame:
        if (first, second) not in self._grids:
            self._grids[(first, second)] = slice_grid(self.table, self.buckets(first), self.buckets(second),
                                                      n_boot=self.n_boot, seed=self.seed)
        return self._grids[(first, second)]

    def _grid_box(self, first: str, second: str):
        """The clickable grid of two slices (built once per pair): a cell's count and share of all
        errors, reddened where its share of errors exceeds its share of questions; too few for an
        interval: grey text."""
        import ipywidgets as w

        key = (first, second)
        if key not in self._grid_boxes:
            frame = self.grid_frame(first, second)
            rows, columns = frame.columns[:2]
            row_buckets = [b for b in dict.fromkeys(frame[rows]) if frame.loc[frame[rows] == b, "count"].sum()]
            column_buckets = [b for b in dict.fromkeys(frame[columns])
                              if frame.loc[frame[columns] == b, "count"].sum()]
            cells = frame.set_index([rows, columns])
            children = [w.HTML(f"<b>{first} \\ {second}</b>")] + [w.HTML(f"<b>{b}</b>") for b in column_buckets]
            for a in row_buckets:
                children.append(w.HTML(f"<b>{a}</b>"))
                for b in column_buckets:
                    cell = cells.loc[(a, b)]
                    children.append(self._cell_button(a, b, cell))
            self._grid_boxes[key] = w.VBox([
                w.HTML(f"<div>Click a cell: <i>questions · share of all errors</i> (red: more of the errors than of "
                       f"the questions; grey: under {MIN_INTERVAL_COUNT} questions)</div>"),
                w.GridBox(children, layout=w.Layout(grid_template_columns=f"repeat({len(column_buckets) + 1}, "
                                                                             "minmax(7em, max-content))",
                                                    overflow="auto"))])
        return self._grid_boxes[key]

    def _cell_button(self, a: str, b: str, cell):
        import ipywidgets as w

        count = int(cell["count"])
        errors = 0.0 if pd.isna(cell["share of errors (%)"]) else cell["share of errors (%)"]
        ratio = errors / cell["share (%)"] if count else 0.0
        button = w.Button(description=f"{count} · {errors:.0f}%" if count else "–", disabled=not count,
                          tooltip=f"{a} × {b}: {count} questions, {errors:.1f}% of errors, "
                                  f"{cell['share (%)']:.1f}% of questions",
                          layout=w.Layout(width="max-content", min_width="7em", padding="0 0.6em"))
        button.style.button_color = _cell_colour(count, ratio)
        if count < MIN_INTERVAL_COUNT:
            button.style.text_color = "#888888"
        button.on_click(lambda _: self.select_cell(a, b))
        return button

    def select_cell(self, a: str, b: str):
        """Page through the questions of one grid cell (``a`` of the slice, ``b`` of the second slice)."""
        self.cell = (a, b)
        self._on_filter()

    def _on_second(self):
        self.cell = None
        second = self.second.value
        self.grid.children = () if second in ("(none)", self.slice.value) else (self._grid_box(self.slice.value, second),)
        self._on_filter()

    def _on_bucket(self):
        self.cell = None
        self._on_filter()

    def _on_slice(self):
        name = self.slice.value
        frame = self.slice_frame(name)
        if name not in self._plots:
            # wide enough for every bucket's two-line label (question type has eleven)
            self._plots[name] = _figure_png(lambda ax: plot_slice(frame, ax=ax),
                                            size=(max(7.5, 0.8 * len(frame) + 2), 3.6))
        _show_png(self.plot, self._plots[name])
        options = ["(all)"] + list(frame["bucket"])
        with self.bucket.hold_trait_notifications():
            self.bucket.options = options
            self.bucket.value = "(all)"
        self._on_second()

    def _on_filter(self):
        outcome = {"(all)": None, "(all errors)": "errors"}.get(self.outcome.value, self.outcome.value)
        by, bucket = None, None
        if self.cell is not None:
            by, bucket = self.pair(self.slice.value, self.second.value), CELL_SEPARATOR.join(self.cell)
        elif self.bucket.value not in (None, "(all)"):
            by, bucket = self.buckets(self.slice.value), self.bucket.value
        self.matching = examples(self.table, outcome=outcome, by=by, bucket=bucket)
        if self.leaf.value != EVERY:
            self.matching = self.matching[self.matching["id"].isin(self.tree.examples(self.leaf.value)["id"])]
        self._update_summary()
        self.show(0)

    def _update_summary(self):
        if self.cell is not None:
            frame = self.grid_frame(self.slice.value, self.second.value)
            row = frame.set_index(list(frame.columns[:2])).loc[self.cell]
            where = f"cell {self.cell[0]} × {self.cell[1]}"
        else:
            frame = self.slice_frame(self.slice.value).set_index("bucket")
            chosen = self.bucket.value not in (None, "(all)")
            row, where = (frame.loc[self.bucket.value], f"bucket {self.bucket.value}") if chosen else (self.overall, "all")

        def pct(value):
            return "–" if pd.isna(value) else f"{value:.1f}"

        interval = (f"95% CI {pct(row['F1_low'])}–{pct(row['F1_high'])}" if not pd.isna(row["F1_low"])
                    else f"no CI under {MIN_INTERVAL_COUNT} questions")
        leaf = ""
        if self.leaf.value != EVERY:
            r = self.tree.leaves.set_index("leaf").loc[self.leaf.value]
            leaf = (f"<br>tree leaf: <i>{r['rule']}</i> · {r['count']} questions, {r['error_rate']:.1f}% errors where "
                    f"found, {r['held_out_error_rate']:.1f}% held out ({r['verdict']}), {r['share of errors (%)']:.1f}% "
                    "of all errors")
        note = ""
        if self.second.value == self.slice.value:
            note = ("<br><i>The × slice is the slice itself: a grid needs two different slices; pick another "
                    "× slice.</i>")
        elif self.matching.empty and self.leaf.value != EVERY and (self.cell is not None or where != "all"):
            note = (f"<br><i>No question is both in {where} and in the chosen tree leaf: clear one of the two "
                    "(bucket or grid cell, tree leaf) to see questions.</i>")
        self.summary.value = (
            f"<b>{len(self.matching)}</b> matching question(s) · {where}: {int(row['count'])} questions, "
            f"EM {pct(row['EM'])} / F1 {pct(row['F1'])} ({interval}) · "
            f"answerable {int(row['HasAns_count'])}: F1 {pct(row['HasAns_F1'])} · "
            f"unanswerable {int(row['NoAns_count'])}: F1 {pct(row['NoAns_F1'])} · "
            f"{pct(row['share of errors (%)'])}% of all errors, {pct(row['share (%)'])}% of questions{leaf}{note}")

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
    its questions, e.g. those the teacher answers correctly and the student abstains on. Each
    dropdown offers only outcomes with questions behind them, each with its count; it opens on the
    largest cell that changed."""

    def __init__(self, comparison, rows: int = 20):
        import ipywidgets as w

        self.comparison = comparison
        self.rows = rows
        counts = comparison.transitions
        a, b = comparison.labels
        self.outcome_a = w.Dropdown(options=[(f"{o} ({int(counts.loc[o].sum())})", o) for o in OUTCOMES
                                             if counts.loc[o].sum() > 0], description=a)
        self.outcome_b = w.Dropdown(description=b)
        self.listing = w.HTML()
        changed = counts.copy()
        for outcome in changed.index:
            changed.loc[outcome, outcome] = 0
        if changed.to_numpy().sum():  # open on the largest cell that changed
            self.outcome_a.value = changed.stack().idxmax()[0]
        self._offer_b(prefer=changed.loc[self.outcome_a.value].idxmax() if changed.to_numpy().sum() else None)
        self.outcome_a.observe(lambda _: (self._offer_b(), self.redraw()), names="value")
        self.outcome_b.observe(lambda _: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.outcome_a, self.outcome_b]), self.listing])
        self.redraw()

    def _offer_b(self, prefer=None) -> None:
        """B's outcomes for A's choice: only cells with questions, each with its count."""
        row = self.comparison.transitions.loc[self.outcome_a.value]
        options = [(f"{o} ({int(row[o])})", o) for o in OUTCOMES if row[o] > 0]
        keep = prefer if prefer in row.index and row.get(prefer, 0) > 0 else self.outcome_b.value
        self.outcome_b.options = options  # (resets the value to the first option)
        self.outcome_b.value = keep if keep in [v for _, v in options] else options[0][1]

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def redraw(self):
        picked = self.comparison.cell(self.outcome_a.value, self.outcome_b.value)
        a, b = self.comparison.labels
        shown = picked.head(self.rows).rename(columns={
            "answer_texts": "gold answers", "answer_a": f"{a} answer", "answer_b": f"{b} answer", "f1_a": f"{a} F1",
            "f1_b": f"{b} F1", "null_odds_a": f"{a} null odds", "null_odds_b": f"{b} null odds"})
        self.listing.value = (f"<b>{len(picked)}</b> question(s): {a} {self.outcome_a.value}, "
                              f"{b} {self.outcome_b.value}" + shown.to_html(index=False, float_format="%.2f"))


class CompressionExplorer:
    """Pick a variant of the compression lab and a cell of its float32 → variant transition matrix:
    the questions behind it (e.g. those float32 answers correctly and int8 abstains on)."""

    def __init__(self, result, rows: int = 20):
        import ipywidgets as w

        self.result, self.rows = result, rows
        names = list(result.comparisons)[1:]
        self.variant = w.Dropdown(options=names, value=names[0] if names else None, description="variant")
        self.cell = w.VBox()
        self.variant.observe(lambda _: self.redraw(), names="value")
        self.widget = w.VBox([self.variant, self.cell])
        self.redraw()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def redraw(self):
        if self.variant.value is None:
            return
        comparison = self.result.comparisons[self.variant.value]
        self.cell.children = [TransitionExplorer(comparison, rows=self.rows).widget]  # opens on the largest change


class ProbeExplorer:
    """Pick a probe and whether its expectation was met; page through the probed questions beside
    their originals (what was removed struck through, what was added in green), with the
    consistency chart above.

    Example::

        ProbeExplorer(load_probes("runs/probes-demo"))
    """

    def __init__(self, results, n_boot: int = N_BOOT, seed: int = 0):
        import ipywidgets as w

        from ..analysis.probes.summary import probe_summary
        from ..runs.run import table_of
        from ..views.plots import plot_probe_consistency

        self.summary_frame = probe_summary(results, n_boot=n_boot, seed=seed)
        self.results = results = table_of(results)
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
