"""Teacher vs student: two runs over the same questions, soft targets, size/speed, attention transfer.

``compare`` works on run tables only; the soft-target, speed and attention functions run models.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .decoding import DECODING_DEFAULTS
from ._common import check_choice
from .errors import OUTCOMES, SLICES, bootstrap_means, outcomes, slice_values
from .summary import CARD_FIGURES
from .metrics import compute_f1

__all__ = [
    "Comparison",
    "compare",
    "paired_bootstrap",
    "format_p_value",
    "word_distributions",
    "soft_targets",
    "kl_divergence",
    "soft_target_kl",
    "slice_kl",
    "model_profile",
    "layer_student",
    "tradeoff_table",
    "attention_similarity",
    "CARD_POINTS",
    "plot_tradeoff",
    "plot_attention_similarity",
    "plot_transitions",
    "transition_table",
    "plot_slice_differences",
    "plot_soft_targets",
]

# Published reference points (model cards), shown on the trade-off chart for these models.
CARD_POINTS = {model: {"EM": card["exact"], "F1": card["f1"], "label": f"{model.split('/')[-1]} model card"}
               for model, card in CARD_FIGURES.items()}


def format_p_value(p: float, n_boot: int) -> str:
    """A bootstrap p-value as text: below the resolution of ``n_boot`` resamples it is an upper
    bound, never "0.0".

    >>> format_p_value(0.0, 1000), format_p_value(0.0342, 1000)
    ('< 0.001', '0.034')
    """
    floor = 1.0 / n_boot
    return f"< {floor:.3g}" if p < floor else f"{p:.3f}"


def paired_bootstrap(a, b, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of ``b - a`` over paired questions, its percentile bootstrap interval, and a two-sided
    p-value (twice the smaller share of resampled differences on either side of zero).

    >>> r = paired_bootstrap([0, 0, 1, 1], [1, 1, 1, 1], n_boot=200)
    >>> r["difference"], r["p_value"] < 0.5
    (0.5, True)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    differences = b - a
    means = bootstrap_means(differences, n_boot=n_boot, seed=seed)
    alpha = (1 - level) / 2
    p_value = min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean()))
    return {"difference": float(differences.mean()), "low": float(np.quantile(means, alpha)),
            "high": float(np.quantile(means, 1 - alpha)), "p_value": float(p_value)}


def _table_of(run) -> pd.DataFrame:
    if isinstance(run, (str, os.PathLike)):
        from .runs import load_run

        run = load_run(run)
    table = getattr(run, "table", run)
    return outcomes(table) if "outcome" not in table.columns else table


_GOLD_COLUMNS = ["context", "question", "answer_texts"]
_DECODING_KEYS = ["max_seq_length", "doc_stride", "max_query_length", "n_best_size", "max_answer_length",
                  "null_score_diff_threshold"]


def _info_of(run) -> dict:
    if isinstance(run, (str, os.PathLike)):
        from .runs import load_run

        run = load_run(run)
    return run.info.get("settings", {}) if hasattr(run, "table") and isinstance(run.info, dict) else {}


def _check_same_settings(run_a, run_b, labels) -> None:
    """Warn when the runs were decoded differently (a difference that is not the models')."""
    a, b = _info_of(run_a), _info_of(run_b)
    differing = [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in _DECODING_KEYS if k in a and k in b and a[k] != b[k]]
    if differing:
        import warnings

        warnings.warn(f"{labels[0]} and {labels[1]} were decoded with different settings ({'; '.join(differing)}): "
                      "part of any difference comes from the settings, not the models", stacklevel=3)


def _check_same_questions(a: pd.DataFrame, b: pd.DataFrame, labels) -> None:
    """Refuse runs whose shared ids hold different questions, contexts or gold answers (different
    data): comparing them would invent regressions."""
    from ._common import name_some

    left = a.set_index("id")[_GOLD_COLUMNS]
    right = b.set_index("id")[_GOLD_COLUMNS].loc[left.index]
    differs = [qid for qid, x, y in zip(left.index, left.itertuples(index=False), right.itertuples(index=False))
               if x.context != y.context or x.question != y.question or list(x.answer_texts) != list(y.answer_texts)]
    if differs:
        raise ValueError(f"{labels[0]} and {labels[1]} were run on different data: {len(differs)} shared question "
                         f"id(s) have another question, context or gold answer ({name_some(differs, 5)}). Run both "
                         "models on the same data file.")


@dataclass
class Comparison:
    """The result of :func:`compare`: per-question table ``joined`` (columns suffixed ``_a``/``_b``),
    ``metrics``, ``transitions`` (counts, outcome under A as rows x under B as columns),
    ``transition_rates`` (row shares) and ``agreement``."""

    labels: tuple
    joined: pd.DataFrame
    metrics: pd.DataFrame
    transitions: pd.DataFrame
    transition_rates: pd.DataFrame
    agreement: dict
    n_boot: int
    seed: int

    def cell(self, outcome_a: str, outcome_b: str) -> pd.DataFrame:
        """The questions behind one transition cell, e.g. ``cell("correct", "abstained")``."""
        for name in (outcome_a, outcome_b):
            if name not in OUTCOMES:
                raise ValueError(f"unknown outcome {name!r}; use {OUTCOMES}")
        picked = self.joined[(self.joined["outcome_a"] == outcome_a) & (self.joined["outcome_b"] == outcome_b)]
        return picked[["id", "question", "answer_texts", "answer_a", "answer_b", "f1_a", "f1_b",
                       "null_odds_a", "null_odds_b"]]

    def slice_differences(self, by, edges=None, quantiles: int | None = None, metric: str = "f1") -> pd.DataFrame:
        """Per bucket of a slice: the metric under A and B, the difference B - A with its paired
        bootstrap interval, and the count; sorted by the size of the gap. Slices on the predicted
        answer use A's predictions."""
        check_choice("metric", metric, ["f1", "exact"])
        base = self.joined.rename(columns=lambda c: c[:-2] if c.endswith("_a") else c)
        buckets = slice_values(base, by, edges, quantiles)
        labels = buckets.astype(object).to_numpy()
        rows = []
        for bucket in buckets.cat.categories:
            part = self.joined[labels == bucket]
            if part.empty:
                continue
            result = paired_bootstrap(part[f"{metric}_a"], part[f"{metric}_b"], self.n_boot, self.seed)
            rows.append({"bucket": bucket, "count": len(part), self.labels[0]: 100 * part[f"{metric}_a"].mean(),
                         self.labels[1]: 100 * part[f"{metric}_b"].mean(), "difference": 100 * result["difference"],
                         "low": 100 * result["low"], "high": 100 * result["high"], "p_value": result["p_value"]})
        frame = pd.DataFrame(rows)
        frame["p"] = [format_p_value(p, self.n_boot) for p in frame["p_value"]]
        spec = SLICES.get(by) if isinstance(by, str) else by
        ordered = getattr(spec, "kind", "category") == "numeric"
        if not ordered:  # categories: biggest gap first; ordered buckets keep their order
            frame = frame.iloc[frame["difference"].abs().to_numpy().argsort(kind="stable")[::-1]].reset_index(drop=True)
        frame.attrs["slice"] = by if isinstance(by, str) else getattr(by, "name", str(by))
        frame.attrs["metric"] = metric
        return frame


def transition_table(outcome_a, outcome_b, labels=("teacher", "student")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts of outcome under A (rows) x outcome under B (columns), every outcome of ``OUTCOMES``
    in order, and the same as row shares.

    >>> counts, rates = transition_table(["correct", "correct"], ["correct", "abstained"])
    >>> int(counts.loc["correct", "abstained"]), float(rates.loc["correct", "abstained"])
    (1, 0.5)
    """
    transitions = pd.crosstab(pd.Categorical(list(outcome_a), OUTCOMES), pd.Categorical(list(outcome_b), OUTCOMES),
                              dropna=False)
    transitions.index.name, transitions.columns.name = f"{labels[0]} outcome", f"{labels[1]} outcome"
    transitions = transitions.reindex(index=OUTCOMES, columns=OUTCOMES, fill_value=0)
    rates = transitions.div(transitions.sum(axis=1).replace(0, np.nan), axis=0)
    return transitions, rates


def compare(run_a, run_b, labels=("teacher", "student"), intersect: bool = False, n_boot: int = 1000,
            seed: int = 0) -> Comparison:
    """Compare two runs over the same questions (run directories, runs or run tables).

    Refuses runs whose questions differ unless ``intersect=True`` (then only shared ids count).

    Example::

        result = compare("runs/teacher", "runs/student")
        result.metrics, result.transitions, result.cell("correct", "abstained")
    """
    _check_same_settings(run_a, run_b, labels)
    a, b = _table_of(run_a), _table_of(run_b)
    ids_a, ids_b = set(a["id"]), set(b["id"])
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        if not intersect:
            raise ValueError(
                f"the runs cover different questions: {len(only_a)} only in {labels[0]} (e.g. {only_a[:3]}), "
                f"{len(only_b)} only in {labels[1]} (e.g. {only_b[:3]}); pass intersect=True to compare the "
                f"{len(ids_a & ids_b)} shared questions")
        a, b = a[a["id"].isin(ids_b)], b[b["id"].isin(ids_a)]
    if a.empty:
        raise ValueError("the runs share no question")
    _check_same_questions(a, b, labels)
    per_model = ["answer", "exact", "f1", "outcome", "null_odds", "best_span_text", "plausible_trap"]
    joined = a.merge(b[["id"] + per_model], on="id", suffixes=("_a", "_b"))
    has = joined["has_answer"].to_numpy(dtype=bool)

    rows = []
    for group, mask in (("overall", np.ones(len(joined), bool)), ("HasAns", has), ("NoAns", ~has)):
        if not mask.any():
            continue
        for metric, column in (("EM", "exact"), ("F1", "f1")):
            result = paired_bootstrap(joined.loc[mask, f"{column}_a"], joined.loc[mask, f"{column}_b"], n_boot, seed)
            rows.append({"group": group, "metric": metric, "count": int(mask.sum()),
                         labels[0]: 100 * joined.loc[mask, f"{column}_a"].mean(),
                         labels[1]: 100 * joined.loc[mask, f"{column}_b"].mean(),
                         "difference": 100 * result["difference"], "low": 100 * result["low"],
                         "high": 100 * result["high"], "p_value": result["p_value"],
                         "p": format_p_value(result["p_value"], n_boot)})
    from .errors import threshold_summary

    # Only the "best" rows are read: they do not depend on the current threshold.
    summaries = [threshold_summary(t, current=0.0).set_index(["metric", "threshold"]) for t in (a, b)]
    for metric in ("EM", "F1"):
        best = [s.loc[(metric, "best"), "overall"] for s in summaries]
        rows.append({"group": "at best threshold", "metric": metric, "count": len(joined),
                     labels[0]: best[0], labels[1]: best[1], "difference": best[1] - best[0],
                     f"{labels[0]} threshold": summaries[0].loc[(metric, "best"), "null_odds_threshold"],
                     f"{labels[1]} threshold": summaries[1].loc[(metric, "best"), "null_odds_threshold"]})
    metrics = pd.DataFrame(rows)

    transitions, rates = transition_table(joined["outcome_a"], joined["outcome_b"], labels)

    answered_a, answered_b = joined["answer_a"] != "", joined["answer_b"] != ""
    both = answered_a & answered_b
    overlap = [compute_f1(x, y) for x, y in zip(joined.loc[both, "answer_a"], joined.loc[both, "answer_b"])]
    agreement = {
        "questions": len(joined),
        "same answer text": float((joined["answer_a"] == joined["answer_b"]).mean()),
        "same abstain decision": float((answered_a == answered_b).mean()),
        "both answered": int(both.sum()),
        "answer overlap F1 (both answered)": float(np.mean(overlap)) if overlap else float("nan"),
    }
    return Comparison(labels=tuple(labels), joined=joined, metrics=metrics, transitions=transitions,
                      transition_rates=rates, agreement=agreement, n_boot=n_boot, seed=seed)


# Soft targets --------------------------------------------------------------------------------

def word_distributions(context: str, offsets: np.ndarray, start_logits, end_logits, temperature: float = 1.0, *,
                       cls_index: int = 0) -> pd.DataFrame:
    """Start and end distributions of one window at ``temperature``, moved onto the context's
    words (whitespace-separated spans), so that models with different tokenizers line up.

    Softmax runs over [CLS] (at ``cls_index``: first for BERT, last for XLNet) and the window's
    context tokens; a token's probability goes to the word holding its first (start) or last
    (end) character. Row ``<no answer>`` holds [CLS]'s.
    """
    import re

    offsets = np.asarray(offsets)
    in_context = offsets[:, 0] >= 0
    positions = np.concatenate([[cls_index], np.flatnonzero(in_context)])

    def softmax(logits):
        z = np.asarray(logits, dtype=np.float64)[positions] / temperature
        z = np.exp(z - z.max())
        return z / z.sum()

    words = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", context)]
    word_starts = np.array([w[0] for w in words])
    p_start = np.zeros(len(words) + 1)
    p_end = np.zeros(len(words) + 1)
    def first_char(start, end):  # byte-level BPE tokens can begin with the space before the word
        while start < end - 1 and context[start].isspace():
            start += 1
        return start

    def last_char(start, end):
        while end - 1 > start and context[end - 1].isspace():
            end -= 1
        return end - 1

    for distribution, target, char_of in ((softmax(start_logits), p_start, first_char),
                                          (softmax(end_logits), p_end, last_char)):
        target[0] = distribution[0]
        for probability, position in zip(distribution[1:], positions[1:]):
            start, end = offsets[position]
            word = int(np.searchsorted(word_starts, char_of(start, end), side="right")) - 1
            target[word + 1] += probability
    frame = pd.DataFrame({"word": ["<no answer>"] + [w[2] for w in words],
                          "char_start": [-1] + [w[0] for w in words], "char_end": [-1] + [w[1] for w in words],
                          "p_start": p_start, "p_end": p_end})
    frame.attrs["temperature"] = temperature
    return frame


def _window_logits(model, tokenizer, question: str, context: str):
    from .inference import forward_windows, prepare_windows

    table = pd.DataFrame({"question": [question], "context": [context]})
    windows = prepare_windows(table, tokenizer)
    outputs = forward_windows(model, windows, range(len(windows)))
    return windows, [(o.start_logits, o.end_logits) for o in outputs]


def soft_targets(models: dict, question: str, context: str, temperatures=(1.0,), window: int = 0) -> pd.DataFrame:
    """Word-aligned start/end distributions of several models at several temperatures.

    ``models``: ``{label: (model, tokenizer)}``. Returns a long table (model, temperature, word,
    char_start, char_end, p_start, p_end). Only words inside every model's ``window`` are kept,
    each distribution renormalised over them.
    """
    frames = []
    for label, (model, tokenizer) in models.items():
        windows, logits = _window_logits(model, tokenizer, question, context)
        offsets = windows.offsets
        if window >= len(offsets):
            raise IndexError(f"{label}: window {window} does not exist ({len(offsets)} window(s))")
        for temperature in temperatures:
            frame = word_distributions(context, offsets[window], *logits[window], temperature=temperature,
                                       cls_index=windows.cls_index[window])
            frame.insert(0, "temperature", temperature)
            frame.insert(0, "model", label)
            covered = offsets[window][offsets[window][:, 0] >= 0]
            frame["covered"] = (frame["char_start"] < 0) | (
                (frame["char_start"] < covered[:, 1].max()) & (frame["char_end"] > covered[:, 0].min()))
            frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    shared = table.groupby(["char_start"])["covered"].all()
    table = table[table["char_start"].map(shared)].copy()
    for column in ("p_start", "p_end"):
        table[column] /= table.groupby(["model", "temperature"])[column].transform("sum")
    return table.drop(columns="covered").reset_index(drop=True)


def kl_divergence(p, q, eps: float = 1e-12) -> float:
    """KL(p || q) in nats, with ``eps`` guarding empty cells of q.

    >>> round(kl_divergence([0.5, 0.5], [0.9, 0.1]), 4)
    0.5108
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], eps))))


def soft_target_kl(table: pd.DataFrame, student: str, teacher: str) -> pd.DataFrame:
    """KL(student || teacher) of the start and end distributions at each temperature (and their mean):
    the quantity a distillation loss on soft targets minimises."""
    rows = []
    for temperature, part in table.groupby("temperature"):
        s = part[part["model"] == student].set_index("char_start")
        t = part[part["model"] == teacher].set_index("char_start").loc[s.index]
        start, end = kl_divergence(s["p_start"], t["p_start"]), kl_divergence(s["p_end"], t["p_end"])
        rows.append({"temperature": temperature, "KL start": start, "KL end": end, "KL mean": (start + end) / 2})
    return pd.DataFrame(rows)


def slice_kl(models: dict, table: pd.DataFrame, student: str, teacher: str, temperatures=(1.0, 2.0, 4.0),
             progress: bool = True) -> pd.DataFrame:
    """KL(student || teacher) per question and temperature over the questions of ``table``
    (e.g. one slice); ``.groupby("temperature").mean()`` gives the slice's average."""
    from tqdm.auto import tqdm

    rows = []
    for row in tqdm(list(table.itertuples()), desc="soft targets", unit="q", disable=not progress):
        targets = soft_targets(models, row.question, row.context, temperatures)
        for record in soft_target_kl(targets, student, teacher).to_dict("records"):
            rows.append({"id": row.id, **record})
    return pd.DataFrame(rows)


def layer_student(teacher, out, *, layers=(0, 2, 4)) -> Path:
    """A smaller student cut from ``teacher`` (a local checkpoint or a loaded ``(model, tokenizer)``):
    its embeddings, QA head and the encoder ``layers`` listed, as DistilBERT initialises its
    student, saved to ``out`` with the teacher's tokenizer. It is not retrained: a starting point
    for distillation, and a real, smaller model for the comparisons here, offline.

    Example::

        layer_student("../shared/models/minilm-l6-squad2-demo", "runs/students/demo-l3", layers=(0, 2, 4))
    """
    from .distill import cut_layers
    from .inference import load_qa_model

    model, tokenizer = load_qa_model(teacher) if isinstance(teacher, (str, os.PathLike)) else teacher
    model = cut_layers(model, layers)  # a copy: the caller's model is not changed
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# Size, speed and accuracy ---------------------------------------------------------------------

def model_profile(model, path=None) -> dict:
    """Parameters, layers, hidden size and on-disk size (of ``path``'s weight files, if given)."""
    config = model.config
    disk = None
    if path is not None and Path(path).is_dir():
        disk = sum(f.stat().st_size for f in Path(path).iterdir()
                   if f.suffix in {".safetensors", ".bin", ".pt", ".h5", ".msgpack"}) / 2**20
    return {"parameters (M)": sum(p.numel() for p in model.parameters()) / 1e6,
            "layers": getattr(config, "num_hidden_layers", None), "hidden size": getattr(config, "hidden_size", None),
            "disk (MB)": disk}


def tradeoff_table(entries: dict, table: pd.DataFrame, repeats: int = 1, **predict_settings) -> pd.DataFrame:
    """Size, measured speed and accuracy of several models, timed in one run on the same questions.

    ``entries``: ``{label: (model, tokenizer, path_or_None, run)}``; ``table``: the questions to
    time on (e.g. 100 of the run's). Accuracy comes from each run's table.
    """
    from .inference import predict_table

    rows = []
    for label, (model, tokenizer, path, run) in entries.items():
        predict_table(model, tokenizer, table.iloc[:2], progress=False, **predict_settings)  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            predict_table(model, tokenizer, table, progress=False, **predict_settings)
        ms = 1000 * (time.perf_counter() - started) / (repeats * len(table))
        scores = run.scores()
        rows.append({"model": label, **model_profile(model, path), "ms/question": ms,
                     "EM": scores["exact"], "F1": scores["f1"], "HasAns F1": scores.get("HasAns_f1", math.nan),
                     "NoAns F1": scores.get("NoAns_f1", math.nan),
                     "reference": run.info.get("settings", {}).get("model", label)})
    return pd.DataFrame(rows)


def plot_tradeoff(frame: pd.DataFrame, ax=None):
    """F1 against latency, marker area proportional to parameters; published card points marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    sizes = 30 + 400 * frame["parameters (M)"] / max(1e-9, frame["parameters (M)"].max())
    ax.scatter(frame["ms/question"], frame["F1"], s=sizes, alpha=0.6, color="#4c72b0")
    for _, row in frame.iterrows():
        ax.annotate(f"{row['model']}\n{row['parameters (M)']:.1f}M params", (row["ms/question"], row["F1"]),
                    textcoords="offset points", xytext=(8, 4), fontsize=8)
        card = CARD_POINTS.get(row["reference"])
        if card:
            ax.axhline(card["F1"], color="gray", linestyle=":", label=f"{card['label']}: F1 {card['F1']}")
    ax.set_xlabel("measured latency (ms / question, this machine)")
    ax.set_ylabel("F1 (%)")
    ax.set_title("Size, speed and accuracy (marker area = parameters)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return ax


# Attention transfer ---------------------------------------------------------------------------

def _js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = (p + q) / 2

    def kl(x, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, x * np.log(x / y), 0.0).sum(axis=-1)

    return np.sqrt(np.maximum(0.0, (kl(p, m) + kl(q, m)) / 2))


def attention_similarity(student, teacher, tokenizer, questions: pd.DataFrame, *,
                         max_seq_length: int = DECODING_DEFAULTS["max_seq_length"]) -> np.ndarray:
    """Jensen-Shannon distance between each student layer's and each teacher layer's attention
    (heads averaged, rows compared token by token), averaged over the questions' first windows.

    The two models must share the tokenizer. Returns ``[student layers, teacher layers]``; lower
    is more alike.
    """
    from .inference import forward_windows, prepare_windows

    windows = prepare_windows(questions, tokenizer, max_seq_length=max_seq_length,
                              doc_stride=min(DECODING_DEFAULTS["doc_stride"], max_seq_length // 2))
    first = [i for i, q in enumerate(windows.question_index) if i == 0 or windows.question_index[i - 1] != q]
    total, count = None, 0
    for w in first:
        s, t = (forward_windows(model, windows, [w], attentions=True)[0].attentions.mean(axis=1)
                for model in (student, teacher))  # [layers, seq, seq], heads averaged
        distance = _js_distance(s[:, None], t[None, :]).mean(axis=-1)  # [student, teacher]
        total = distance if total is None else total + distance
        count += 1
    return total / count


def plot_attention_similarity(distance: np.ndarray, labels=("student", "teacher"), ax=None, n: int | None = None):
    """Student-layer x teacher-layer heatmap of attention JS distance (darker = more alike)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    image = ax.imshow(distance, cmap="viridis_r", aspect="auto", interpolation="nearest")
    ax.set_xticks(range(distance.shape[1]))  # layers are whole numbers
    ax.set_yticks(range(distance.shape[0]))
    ax.set_xlabel(f"{labels[1]} layer")
    ax.set_ylabel(f"{labels[0]} layer")
    ax.set_title("Attention JS distance, heads averaged" + (f" (n={n} questions)" if n else ""))
    ax.figure.colorbar(image, ax=ax, label="Jensen-Shannon distance (lower = more alike)")
    return ax


def plot_transitions(comparison: Comparison, ax=None):
    """The outcome transition matrix: counts, and row shares as colour."""
    import matplotlib.pyplot as plt

    counts = comparison.transitions
    rows = [o for o in OUTCOMES if counts.loc[o].sum() > 0]
    columns = [o for o in OUTCOMES if counts[o].sum() > 0]
    counts = counts.loc[rows, columns]
    rates = comparison.transition_rates.loc[rows, columns].fillna(0)
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.9 * len(columns), 1 + 0.6 * len(rows)))
    ax.imshow(rates.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(counts.to_numpy()):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                color="white" if rates.to_numpy()[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{r} ({counts.loc[r].sum()})" for r in rows], fontsize=8)
    ax.set_xlabel(f"{comparison.labels[1]} outcome")
    ax.set_ylabel(f"{comparison.labels[0]} outcome")
    ax.set_title(f"Outcome transitions (n={len(comparison.joined)}; colour = row share)")
    return ax


def plot_slice_differences(frame: pd.DataFrame, labels=("teacher", "student"), ax=None):
    """Per-bucket difference (B - A) with paired 95% intervals, sorted by the gap, with counts."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(frame) + 1.5))
    y = np.arange(len(frame))
    errors = np.vstack([frame["difference"] - frame["low"], frame["high"] - frame["difference"]])
    colors = ["#55a868" if d >= 0 else "#c44e52" for d in frame["difference"]]
    ax.barh(y, frame["difference"], xerr=errors, color=colors, capsize=3)
    ax.set_yticks(y, [f"{b} (n={c})" for b, c in zip(frame["bucket"], frame["count"])], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    metric = frame.attrs.get("metric", "f1").upper()
    ax.set_xlabel(f"{metric} difference, {labels[1]} − {labels[0]} (points, 95% paired CI)")
    ax.set_title(f"Where the gap is, by {frame.attrs.get('slice', 'bucket')}")
    return ax


def plot_soft_targets(table: pd.DataFrame, temperature: float, which: str = "p_start", ax=None, top: int = 25):
    """Side by side, each model's word-aligned distribution at one temperature (the words with
    the most probability under any model, in text order)."""
    import matplotlib.pyplot as plt

    part = table[np.isclose(table["temperature"], temperature)]
    best = part.groupby("char_start")[which].max().nlargest(top).index
    part = part[part["char_start"].isin(best)]
    pivot = part.pivot_table(index=["char_start", "word"], columns="model", values=which).sort_index()
    if ax is None:
        _, ax = plt.subplots(figsize=(max(7, 0.4 * len(pivot) + 2), 3.8))
    x = np.arange(len(pivot))
    width = 0.8 / max(1, len(pivot.columns))
    for k, model in enumerate(pivot.columns):
        ax.bar(x + k * width - 0.4 + width / 2, pivot[model], width=width, label=model)
    ax.set_xticks(x, [w for _, w in pivot.index], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"{'start' if which == 'p_start' else 'end'} probability")
    ax.set_title(f"Soft targets at T={temperature:g} (word-aligned; a distillation loss minimises "
                 "KL(student‖teacher) of these)", fontsize=9)
    ax.legend()
    return ax
