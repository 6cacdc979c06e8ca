"""ipywidgets apps over a model: attention, soft targets and attribution explorers (they call the
package and compute nothing themselves)."""

from __future__ import annotations

import gc
import io

import pandas as pd

from ..analysis.outcomes import outcomes
from ..views.figures import png_bytes
from .widgets import _figure_png, _FollowsQuestions, _show_png


def _listed(n: int, shown: int) -> str:
    """The question picker's label: says when it lists only the first ``shown`` of ``n`` questions."""
    return "question" if n <= shown else f"question (first {shown} of {n}; max_questions= for more)"


__all__ = ['ATTENTION_VIEWS', 'AttentionExplorer', 'AttributionExplorer', 'LayerExplorer', 'SoftTargetExplorer']


_TOKEN_AXES = {"left": 0.14, "bottom": 0.14, "right": 0.9, "top": 0.94}


ATTENTION_VIEWS = ["layer x head grid", "one head", "question → context", "head statistics"]


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

        self.run, self.model, self.tokenizer = run, model, tokenizer
        self.table = outcomes(run.table).set_index("id", drop=False)
        # The run's own windowing and threshold, so the views show the run's decisions.
        self.window_settings = {"windowing": run.windowing, "decoding": run.decoding}
        self._attention: dict = {}
        self._images: dict = {}
        layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
        options = [(f"{qid}: {q[:70]}", qid) for qid, q in zip(run.table["id"][:max_questions],
                                                               run.table["question"][:max_questions])]
        self.question = w.Dropdown(options=options, description=_listed(len(run.table), max_questions),
                                   layout=w.Layout(width="60em"), style={"description_width": "initial"})
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
        from ..interpret.attention import get_attention, to_words

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

        from ..interpret.attention import crop_indices
        from ..views.attention import plot_head

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
        from ..interpret.attention import head_statistics_of

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
        from ..views.attention import plot_head_grid, plot_head_statistics, plot_question_to_context
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
                self._images[key] = _figure_png(lambda ax: plot_head_grid(att, ax=ax), size=(10, 6))
            elif view == "one head":
                self._images[key] = self._head_png(att, (qid, self.words.value, self.gold_window.value),
                                                   layer, head)
            elif view == "question → context":
                self._images[key] = _figure_png(lambda ax: plot_question_to_context(att, layer=layer, head=head, ax=ax),
                                                size=(11, 5), margins={"left": 0.01, "bottom": 0.09, "right": 0.99,
                                                                       "top": 0.92})
            else:
                from matplotlib.figure import Figure

                # 920 px at the explorers' 80 dpi: inside a notebook's output area, never clipped at the right
                figure = Figure(figsize=(11.5, 6.4))
                plot_head_statistics(self.statistics(qid, self.words.value, self.gold_window.value),
                                     figure=figure, colorbars=False)
                self._images[key] = png_bytes(figure)
        _show_png(self.image, self._images[key])


class SoftTargetExplorer:
    """Pick a question; a temperature slider redraws both models' word-aligned soft targets and
    the KL(teacher‖student) the soft-target loss minimises at that temperature.

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
        self.question = w.Dropdown(options=options, description=_listed(len(table), max_questions),
                                   layout=w.Layout(width="60em"), style={"description_width": "initial"})
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
        from ..interpret.soft_targets import soft_targets

        if qid not in self._targets:
            row = self.table.loc[qid]
            self._targets[qid] = soft_targets(self.models, row["question"], row["context"], self.temperatures)
        return self._targets[qid]

    def redraw(self):
        from ..interpret.soft_targets import soft_target_kl
        from ..views.compare import plot_soft_targets

        qid, temperature, which = self.question.value, self.temperature.value, self.which.value
        table = self.targets(qid)
        kl = soft_target_kl(table, self.student, self.teacher).set_index("temperature").loc[temperature]
        self.kl.value = (f"KL({self.teacher}‖{self.student}) at T={temperature:g}: start {kl['KL start']:.3f}, "
                         f"end {kl['KL end']:.3f} nats — what the soft-target distillation loss minimises "
                         f"(scaled by T² in Hinton et al.'s loss); the reverse direction, KL({self.student}‖"
                         f"{self.teacher}), averages {kl['reverse KL mean']:.3f}")
        key = (qid, temperature, which)
        if key not in self._images:
            self._images[key] = _figure_png(lambda ax: plot_soft_targets(table, temperature, which=which, ax=ax),
                                            size=(10, 3.8))
        _show_png(self.image, self._images[key])


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

        from ..interpret.attribution import METHODS, TARGETS, Attributor, method_of

        self.run, self.model, self.tokenizer, self.n_steps = run, model, tokenizer, n_steps
        self.table = outcomes(run.table).set_index("id", drop=False)
        # one attributor per method, with the run's own windows and decoding
        self.attributors = {name: Attributor(model, tokenizer, method=method_of(name, n_steps), windowing=run.windowing,
                                             decoding=run.decoding) for name in METHODS}
        self._cache: dict = {}
        options = [(f"{qid}: {q[:70]}", qid) for qid, q in zip(run.table["id"][:max_questions],
                                                               run.table["question"][:max_questions])]
        self.question = w.Dropdown(options=options, description=_listed(len(run.table), max_questions),
                                   layout=w.Layout(width="60em"), style={"description_width": "initial"})
        self.target = w.Dropdown(options=TARGETS, value="null_odds", description="target")
        self.method = w.Dropdown(options=list(METHODS), value="integrated_gradients", description="method")
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
        """The cached attribution of one question (see :class:`xdanalysis.interpret.attribution.Attributor`)."""
        key = (qid, target, method)
        if key not in self._cache:
            row = self.table.loc[qid]
            self._cache[key] = self.attributors[method].attribute(row["question"], row["context"], target=target)
        return self._cache[key]

    def redraw(self):
        import time

        from ..views.attribution import attribution_html, plot_top_tokens

        qid, target, method = self.question.value, self.target.value, self.method.value
        if qid is None:
            return
        row = self.table.loc[qid]
        if (qid, target, method) not in self._cache:  # say so, and grey out what is on screen: it is the old one
            self.status.value = f"<i>computing {method.replace('_', ' ')} for {target}… (the words below are the " \
                                "previous attribution until it is done)</i>"
            self.text.value = f"<div style='opacity:0.3'>{self.text.value}</div>" if self.text.value else ""
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


class LayerExplorer:
    """Pick a question; see its answer form layer by layer in each model side by side: the start
    distribution at every layer, the answer and null odds each layer decodes. Takes the
    :func:`xdanalysis.interpret.layers.layer_lens` results (``{label: LayerLens}``, over the same
    questions) and draws them; it runs no model.

    Example::

        LayerExplorer({"teacher": layer_lens(teacher, tok, table), "student": layer_lens(student, tok, table)})
    """

    def __init__(self, lenses: dict, max_questions: int = 500):
        import ipywidgets as w

        self.lenses = lenses
        first = next(iter(lenses.values()))
        table = first.table
        self._images: dict = {}
        options = [(f"{qid}: {q[:70]}", qid) for qid, q in zip(table["id"][:max_questions],
                                                                table["question"][:max_questions])]
        self.question = w.Dropdown(options=options, description=_listed(len(table), max_questions),
                                   layout=w.Layout(width="60em"), style={"description_width": "initial"})
        self.which = w.ToggleButtons(options=["start", "end"], value="start")
        self.table = w.HTML()
        self.images = w.VBox([w.Image(format="png") for _ in lenses])  # one under the other: never cut off
        self.question.observe(lambda _: self.redraw(), names="value")
        self.which.observe(lambda _: self.redraw(), names="value")
        self.widget = w.VBox([self.question, self.which, self.table, self.images])
        self.redraw()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def redraw(self):
        import html

        from ..views.layers import plot_layer_distributions

        qid, which = self.question.value, self.which.value
        rows = []
        for (label, lens), image in zip(self.lenses.items(), self.images.children):
            key = (label, qid, which)
            if key not in self._images:
                names = lens.tokens[lens.window_of(qid)]
                self._images[key] = _figure_png(
                    lambda ax, lens=lens, label=label, names=names: plot_layer_distributions(
                        lens.start_distributions(qid, which), names, title=f"{label}: {which} by layer", ax=ax),
                    size=(9, 3.6))
            _show_png(image, self._images[key])
            part = lens.per_question[lens.per_question["id"] == qid]
            rows.append("".join(f"<tr><td>{html.escape(label)}</td><td>{r.layer}</td><td>{html.escape(r.answer or '(abstain)')}"
                                f"</td><td>{r.null_odds:+.2f}</td><td>{r.f1:.2f}</td></tr>" for r in part.itertuples()))
        self.table.value = ("<table><tr><th>model</th><th>layer</th><th>answer it decodes</th><th>null odds</th>"
                            "<th>F1</th></tr>" + "".join(rows) + "</table>")
