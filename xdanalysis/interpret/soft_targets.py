"""Soft targets: start/end distributions of several models over words, at several temperatures,
their divergences, and attention similarity between a student and its teacher."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.common import progress_bar
from ..core.settings import WindowSettings
from ..core.stats import kl_divergence, softmax
from ..core.text import token_char
from ..model.predict import question_windows

__all__ = ['attention_similarity', 'slice_kl', 'soft_target_kl', 'soft_targets', 'word_distributions']


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

    words = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", context)]
    word_starts = np.array([w[0] for w in words])
    p_start = np.zeros(len(words) + 1)
    p_end = np.zeros(len(words) + 1)
    for logits, target, which in ((start_logits, p_start, "start"), (end_logits, p_end, "end")):
        distribution = softmax(np.asarray(logits)[positions], temperature)
        target[0] = distribution[0]
        for probability, position in zip(distribution[1:], positions[1:]):
            start, end = offsets[position]
            char = token_char(context, int(start), int(end), which=which)
            word = int(np.searchsorted(word_starts, char, side="right")) - 1
            target[word + 1] += probability
    frame = pd.DataFrame({"word": ["<no answer>"] + [w[2] for w in words],
                          "char_start": [-1] + [w[0] for w in words], "char_end": [-1] + [w[1] for w in words],
                          "p_start": p_start, "p_end": p_end})
    return frame


def soft_targets(models: dict, question: str, context: str, temperatures=(1.0,), window: int = 0) -> pd.DataFrame:
    """Word-aligned start/end distributions of several models at several temperatures.

    ``models``: ``{label: (model, tokenizer)}``. Returns a long table (model, temperature, word,
    char_start, char_end, p_start, p_end). Only words inside every model's ``window`` are kept,
    each distribution renormalised over them.
    """
    frames = []
    for label, (model, tokenizer) in models.items():
        windows, outputs = question_windows(model, tokenizer, question, context)
        logits = [(o.start_logits, o.end_logits) for o in outputs]
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


def soft_target_kl(table: pd.DataFrame, student: str, teacher: str) -> pd.DataFrame:
    """KL(teacher || student) of the start and end distributions at each temperature, and their mean: the
    quantity the soft-target loss minimises (``distillation_loss`` is ``kl_div(log p_student, p_teacher)``,
    the teacher's distribution weighting). ``reverse KL mean`` is KL(student || teacher), beside it to
    teach the difference: the forward direction punishes a student that misses mass the teacher has."""
    rows = []
    for temperature, part in table.groupby("temperature"):
        s = part[part["model"] == student].set_index("char_start")
        t = part[part["model"] == teacher].set_index("char_start").loc[s.index]
        start, end = kl_divergence(t["p_start"], s["p_start"]), kl_divergence(t["p_end"], s["p_end"])
        reverse = (kl_divergence(s["p_start"], t["p_start"]) + kl_divergence(s["p_end"], t["p_end"])) / 2
        rows.append({"temperature": temperature, "KL start": start, "KL end": end, "KL mean": (start + end) / 2,
                     "reverse KL mean": reverse})
    return pd.DataFrame(rows)


def slice_kl(models: dict, table: pd.DataFrame, student: str, teacher: str, temperatures=(1.0, 2.0, 4.0),
             progress: bool = True) -> pd.DataFrame:
    """KL(teacher || student) (and the reverse) per question and temperature over the questions of ``table``
    (e.g. one slice); ``.groupby("temperature").mean()`` gives the slice's average."""

    rows = []
    for row in progress_bar(list(table.itertuples()), desc="soft targets", unit="q", disable=not progress):
        targets = soft_targets(models, row.question, row.context, temperatures)
        for record in soft_target_kl(targets, student, teacher).to_dict("records"):
            rows.append({"id": row.id, **record})
    return pd.DataFrame(rows)


# Attention transfer ---------------------------------------------------------------------------

def _js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = (p + q) / 2

    def kl(x, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, x * np.log(x / y), 0.0).sum(axis=-1)

    return np.sqrt(np.maximum(0.0, (kl(p, m) + kl(q, m)) / 2))


def attention_similarity(student, teacher, tokenizer, questions: pd.DataFrame, *,
                         windowing: WindowSettings = WindowSettings()) -> np.ndarray:
    """Jensen-Shannon distance between each student layer's and each teacher layer's attention
    (heads averaged, rows compared token by token), averaged over the questions' first windows.

    The two models must share the tokenizer. Returns ``[student layers, teacher layers]``; lower
    is more alike.
    """
    from ..model.forward import forward_windows
    from ..model.windows import prepare_windows

    windows = prepare_windows(questions, tokenizer, windowing)
    first = [i for i, q in enumerate(windows.question_index) if i == 0 or windows.question_index[i - 1] != q]
    total, count = None, 0
    for w in first:
        s, t = (forward_windows(model, windows, [w], attentions=True)[0].attentions.mean(axis=1)
                for model in (student, teacher))  # [layers, seq, seq], heads averaged
        distance = _js_distance(s[:, None], t[None, :]).mean(axis=-1)  # [student, teacher]
        total = distance if total is None else total + distance
        count += 1
    return total / count
