"""ipywidgets apps over a run. They call the package's functions and compute nothing themselves."""

from __future__ import annotations

import gc
import io

import pandas as pd

from .display import example_html, probe_pair_html
from .errors import OUTCOMES, SLICES, examples, outcomes, slice_table, slice_values
from .plots import plot_slice

__all__ = ["ErrorExplorer", "AttentionExplorer", "SoftTargetExplorer", "TransitionExplorer", "ProbeExplorer",
           "AttributionExplorer"]


def _png_bytes(figure, margins: dict | None = None) -> bytes:
    # Fixed margins skip tight_layout's extra text rendering, a third of a redraw.
    if margins:
        figure.subplots_adjust(**margins)
    else:
        figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _figure_png(draw, size=(7.5, 3.4), margins: dict | None = None) -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    draw(figure.add_subplot())
    return _png_bytes(figure, margins)


def _show_png(image, data: bytes) -> None:
    """Put a PNG in an Image widget at its own pixel size (never stretched to the cell, so never blurry)."""
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk
    with image.hold_sync():
        image.value = data
        image.width, image.height = str(width), str(height)
        image.layout.width, image.layout.height = f"{width}px", f"{height}px"
        image.layout.max_width = "none"


_TOKEN_AXES = {"left": 0.14, "bottom": 0.14, "right": 0.9, "top": 0.94}


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


ATTENTION_VIEWS = ["layer x head grid", "one head", "question → context", "head statistics"]


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


class AttentionExplorer(_FollowsQuestions):
    """Pick a question (or receive one from the ErrorExplorer), a layer and a head, a view, and
    words or sub-words; the figure redraws from the cached attention of that question.

    Example::

        explorer = AttentionExplorer(run, model, tokenizer)
        explorer.show_question(error_explorer.current_id)
    """

    def __init__(self, run, model, tokenizer, *, random_head: bool = False, max_questions: int = 500,
                 freeze_gc: bool = False):
        import ipywidgets as w

        from .decoding import DECODING_DEFAULTS

        self.run, self.model, self.tokenizer = run, model, tokenizer
        self.table = outcomes(run.table).set_index("id", drop=False)
        settings = getattr(run, "info", {}).get("settings", {})
        # The run's own windowing and threshold, so the views show the run's decisions.
        self.window_settings = {name: settings.get(name, DECODING_DEFAULTS[name]) for name in
                                ("max_seq_length", "doc_stride", "max_query_length", "null_score_diff_threshold")}
        self._attention: dict = {}
        self._images: dict = {}
        layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
        options = [(f"{qid}: {q[:70]}", qid) for qid, q in zip(run.table["id"][:max_questions],
                                                               run.table["question"][:max_questions])]
        self.question = w.Dropdown(options=options, description="question", layout=w.Layout(width="60em"))
        self.layer = w.IntSlider(min=0, max=layers - 1, value=layers - 1, description="layer")
        self.head = w.IntSlider(min=0, max=heads - 1, value=0, description="head")
        self.view = w.ToggleButtons(options=ATTENTION_VIEWS, value="one head")
        self.words = w.Checkbox(value=False, description="whole words")
        self.gold_window = w.Checkbox(value=False, description="window of the gold answer")
        self.note = w.HTML()
        self.header = w.HTML()
        self.image = w.Image(format="png")
        if random_head:
            self.note.value = ("<b style='color:#b00'>This model's question-answering head is untrained: its "
                               "answers are random; the encoder's attention is real.</b>")
        for control in (self.question, self.layer, self.head, self.view, self.words, self.gold_window):
            control.observe(lambda _: self.redraw(), names="value")
        if freeze_gc:
            # Opt-in: a full garbage collection walks every object of the loaded model (~0.4 s) and
            # matplotlib's redraws trigger them; frozen objects are skipped by later collections.
            # This changes the whole process, so it is never done unasked.
            gc.freeze()
        self.widget = w.VBox([self.note, self.question, self.header, w.HBox([self.layer, self.head]),
                              w.HBox([self.view, self.words, self.gold_window]), self.image])
        self.redraw()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def attention(self, qid: str, words: bool, gold_window: bool):
        from .attention import get_attention, to_words

        key = (qid, gold_window)
        if key not in self._attention:
            row = self.table.loc[qid]
            self._attention[key] = get_attention(
                self.model, self.tokenizer, row["question"], row["context"],
                gold=list(zip(row["answer_starts"], row["answer_texts"])) or None,
                prefer="gold" if gold_window else "prediction", **self.window_settings)
        att = self._attention[key]
        if words:
            if (key, "words") not in self._attention:
                self._attention[(key, "words")] = to_words(att)
            att = self._attention[(key, "words")]
        return att

    def _head_png(self, att, key, layer: int, head: int) -> bytes:
        """The one-head view. Token labels are drawn once per question; a slider move redraws
        only the heatmap and its title over that cached background."""
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from PIL import Image

        from .attention import crop_indices, plot_head

        if getattr(self, "_head_key", None) != key:
            figure = Figure(figsize=(9, 8))
            canvas = FigureCanvasAgg(figure)
            ax = plot_head(att, layer, head, ax=figure.add_subplot())
            figure.subplots_adjust(**_TOKEN_AXES)
            ax.set_title("")
            self._head_label = figure.text(0.5, 0.965, "", ha="center", fontsize=12)
            image = ax.images[0]
            image.set_visible(False)
            canvas.draw()
            self._head_background = canvas.copy_from_bbox(figure.bbox)
            image.set_visible(True)
            self._head_canvas, self._head_axes, self._head_key = canvas, ax, key
            self._head_indices = crop_indices(att)
        canvas, ax, indices = self._head_canvas, self._head_axes, self._head_indices
        canvas.restore_region(self._head_background)
        ax.images[0].set_data(att.attentions[layer, head][np.ix_(indices, indices)])
        self._head_label.set_text(f"Layer {layer}, head {head}"
                                  + (" (cropped)" if len(indices) < len(att.tokens) else ""))
        ax.draw_artist(ax.images[0])
        ax.figure.draw_artist(self._head_label)
        buffer = io.BytesIO()
        Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).save(buffer, format="png",
                                                                                      compress_level=1)
        return buffer.getvalue()

    def statistics(self, qid: str, words: bool, gold_window: bool) -> dict:
        from .attention import head_statistics_of

        key = (qid, words, gold_window, "statistics")
        if key not in self._attention:
            att = self.attention(qid, words, gold_window)
            self._attention[key] = head_statistics_of(att.attentions, att.tokens, cls_index=att.cls_index)
        return self._attention[key]

    def _header_html(self, qid: str, att) -> str:
        import html

        row = self.table.loc[qid]
        gold = " | ".join(dict.fromkeys(row["answer_texts"])) if len(row["answer_texts"]) else "(no answer)"
        prediction = row["answer"] or f"(abstained; best span “{row['best_span_text']}”)"
        return (f"<div><b>gold:</b> {html.escape(gold)} · <b>prediction:</b> {html.escape(prediction)} · "
                f"<b>outcome:</b> {html.escape(str(row['outcome']))} · null odds {row['null_odds']:+.2f} · "
                f"window {att.window + 1} of {att.n_windows}</div>")

    def redraw(self):
        from .attention import plot_head_grid, plot_head_statistics, plot_question_to_context
        qid, view = self.question.value, self.view.value
        self.header.value = self._header_html(qid, self.attention(qid, self.words.value, self.gold_window.value))
        # The grid and the statistics show every layer and head: the sliders do not change them.
        layer_head = None if view in ("layer x head grid", "head statistics") else (self.layer.value, self.head.value)
        key = (qid, view, self.words.value, self.gold_window.value, layer_head)
        if key not in self._images:
            att = self.attention(qid, self.words.value, self.gold_window.value)
            self.statistics(qid, self.words.value, self.gold_window.value)  # with the extraction, not a redraw
            layer, head = self.layer.value, self.head.value
            if view == "layer x head grid":
                self._images[key] = _figure_png(lambda ax: plot_head_grid(att, ax=ax), size=(10, 6),
                                                margins={"left": 0.06, "bottom": 0.08, "right": 0.98, "top": 0.93})
            elif view == "one head":
                self._images[key] = self._head_png(att, (qid, self.words.value, self.gold_window.value),
                                                   layer, head)
            elif view == "question → context":
                self._images[key] = _figure_png(lambda ax: plot_question_to_context(att, layer, head, ax=ax),
                                                size=(11, 5), margins={"left": 0.01, "bottom": 0.01, "right": 0.99,
                                                                       "top": 0.92})
            else:
                from matplotlib.figure import Figure

                figure = Figure(figsize=(18, 3))
                plot_head_statistics(self.statistics(qid, self.words.value, self.gold_window.value),
                                     figure=figure, colorbars=False)
                self._images[key] = _png_bytes(figure, {"left": 0.04, "bottom": 0.15, "right": 0.98,
                                                        "top": 0.8, "wspace": 0.45})
        _show_png(self.image, self._images[key])


class SoftTargetExplorer:
    """Pick a question; a temperature slider redraws both models' word-aligned soft targets and
    the KL(student‖teacher) a distillation loss would minimise at that temperature.

    Example::

        SoftTargetExplorer({"teacher": (t_model, t_tok), "student": (s_model, s_tok)}, run.table)
    """

    def __init__(self, models: dict, table: pd.DataFrame, temperatures=(0.5, 1, 2, 4, 8), max_questions: int = 300,
                 student: str | None = None, teacher: str | None = None):
        import ipywidgets as w

        self.models = models
        labels = list(models)
        self.teacher, self.student = teacher or labels[0], student or labels[1]
        self.table = table.set_index("id", drop=False)
        self.temperatures = tuple(float(t) for t in temperatures)
        self._targets: dict = {}
        self._images: dict = {}
        options = [(f"{qid}: {q[:70]}", qid) for qid, q in zip(table["id"][:max_questions], table["question"][:max_questions])]
        self.question = w.Dropdown(options=options, description="question", layout=w.Layout(width="60em"))
        self.temperature = w.SelectionSlider(options=self.temperatures, value=1.0 if 1.0 in self.temperatures
                                             else self.temperatures[0], description="T")
        self.which = w.ToggleButtons(options=[("start", "p_start"), ("end", "p_end")], value="p_start")
        self.kl = w.HTML()
        self.image = w.Image(format="png")
        for control in (self.question, self.temperature, self.which):
            control.observe(lambda _: self.redraw(), names="value")
        self.widget = w.VBox([self.question, w.HBox([self.temperature, self.which]), self.kl, self.image])
        self.redraw()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def targets(self, qid: str) -> pd.DataFrame:
        from .compare import soft_targets

        if qid not in self._targets:
            row = self.table.loc[qid]
            self._targets[qid] = soft_targets(self.models, row["question"], row["context"], self.temperatures)
        return self._targets[qid]

    def redraw(self):
        from .compare import plot_soft_targets, soft_target_kl

        qid, temperature, which = self.question.value, self.temperature.value, self.which.value
        table = self.targets(qid)
        kl = soft_target_kl(table, self.student, self.teacher).set_index("temperature").loc[temperature]
        self.kl.value = (f"KL({self.student}‖{self.teacher}) at T={temperature:g}: start {kl['KL start']:.3f}, "
                         f"end {kl['KL end']:.3f} nats — what a soft-target distillation loss minimises "
                         "(scaled by T² in Hinton et al.'s loss)")
        key = (qid, temperature, which)
        if key not in self._images:
            self._images[key] = _figure_png(lambda ax: plot_soft_targets(table, temperature, which, ax=ax),
                                            size=(10, 3.8))
        _show_png(self.image, self._images[key])


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

        from .plots import plot_probe_consistency
        from .probes import probe_summary

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
        from .probes import probe_examples

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


class AttributionExplorer(_FollowsQuestions):
    """Pick a question (or follow the ErrorExplorer), a target (start, end, span score, null score,
    null odds: the answer-or-abstain decision) and a method; see the question and context shaded by
    attribution and the top words. Each (question, target, method) is computed once and cached; a
    "computing" note shows while integrated gradients run.

    Example::

        explorer = AttributionExplorer(run, model, tokenizer)
        explorer.follow(error_explorer)
    """

    def __init__(self, run, model, tokenizer, *, n_steps: int = 32, max_questions: int = 500):
        import ipywidgets as w

        from .attribution import METHODS, TARGETS

        self.run, self.model, self.tokenizer, self.n_steps = run, model, tokenizer, n_steps
        self.table = outcomes(run.table).set_index("id", drop=False)
        settings = getattr(run, "info", {}).get("settings", {})
        self.window_settings = {k: settings[k] for k in ("max_seq_length", "doc_stride", "max_query_length",
                                                         "null_score_diff_threshold") if k in settings}
        self._cache: dict = {}
        options = [(f"{qid}: {q[:70]}", qid) for qid, q in zip(run.table["id"][:max_questions],
                                                               run.table["question"][:max_questions])]
        self.question = w.Dropdown(options=options, description="question", layout=w.Layout(width="60em"))
        self.target = w.Dropdown(options=TARGETS, value="null_odds", description="target")
        self.method = w.Dropdown(options=METHODS, value="integrated_gradients", description="method")
        self.status = w.HTML()
        self.text = w.HTML()
        self.image = w.Image(format="png")
        for control in (self.question, self.target, self.method):
            control.observe(lambda _: self.redraw(), names="value")
        self.widget = w.VBox([self.question, w.HBox([self.target, self.method]), self.status, self.text, self.image])
        self.redraw()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def attribution(self, qid: str, target: str, method: str):
        """The cached attribution of one question (see :func:`xdanalysis.attribution.attribute`)."""
        from .attribution import attribute

        key = (qid, target, method)
        if key not in self._cache:
            row = self.table.loc[qid]
            self._cache[key] = attribute(self.model, self.tokenizer, row["question"], row["context"], target=target,
                                         method=method, n_steps=self.n_steps, **self.window_settings)
        return self._cache[key]

    def redraw(self):
        import time

        from .attribution import attribution_html, plot_top_tokens

        qid, target, method = self.question.value, self.target.value, self.method.value
        if qid is None:
            return
        row = self.table.loc[qid]
        if (qid, target, method) not in self._cache:
            self.status.value = f"<i>computing {method.replace('_', ' ')} for {target}…</i>"
        started = time.perf_counter()
        try:
            attr = self.attribution(qid, target, method)
        except ValueError as error:  # e.g. a span target in a window with no admissible span
            self.status.value = f"<b>{error}</b>"
            self.text.value = ""
            return
        seconds = time.perf_counter() - started
        gold = list(zip(row["answer_starts"], row["answer_texts"]))
        plausible = list(zip(row["plausible_starts"], row["plausible_texts"]))
        check = (f"completeness: Σ attributions {attr.scores.sum():+.3f} vs target change "
                 f"{attr.target_value - attr.baseline_value:+.3f} (delta {attr.delta:.4f})"
                 if method == "integrated_gradients" else "gradient × input: no completeness guarantee")
        self.status.value = (f"outcome <b>{row['outcome']}</b> · answer “{attr.answer or '(abstained)'}” · null odds "
                             f"{attr.null_odds:+.2f} · {target} = {attr.target_value:+.3f} · {check} · "
                             f"{'cached' if seconds < 0.05 else f'{seconds:.1f} s'}")
        self.text.value = attribution_html(attr, gold=gold, plausible=plausible)
        _show_png(self.image, _figure_png(lambda ax: plot_top_tokens(attr, ax=ax), size=(6.5, 4.2)))
