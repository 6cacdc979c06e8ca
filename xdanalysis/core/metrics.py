"""SQuAD 2.0 scoring with exactly the behaviour of the official ``evaluate-v2.0.py``.

Same normalisation (Unicode lower-casing, ASCII-only punctuation, English articles, whitespace),
same per-question maximum over gold answers, same keys and values, same stable sort by
no-answer probability (file order breaks ties) in the best-threshold search and the PR curves.

Where the official script crashes (predictions or no-answer probabilities missing for some ids)
this module raises :class:`MissingPredictionsError` naming them; ``missing="wrong"`` scores
missing predictions as wrong instead. Prediction ids that are not in the data are ignored (as
the official script does) with a warning that names them.

No-answer probabilities must be numbers: NaN is refused, naming the ids (the official search
would give a result that depends on where the NaN sits in the file).

This module never imports torch; matplotlib is imported only to draw the official images, on
a bare figure (no pyplot, no backend switched).
"""

from __future__ import annotations

import collections
import math
import numbers
import os
import re
import string
import warnings
from collections import OrderedDict

from .common import name_some

__all__ = ['CARD_FIGURES', 'abstain_baseline', 'table_scores', 'MissingPredictionsError', 'compute_exact', 'compute_f1', 'normalize_answer', 'precision_recall_curve', 'question_scores', 'squad_v2_scores']

# The published figures of the default model (its model card, SQuAD 2.0 validation, threshold 0).
CARD_FIGURES = {"nbroad/xdistil-l12-h384-squad2": {"exact": 75.46, "f1": 79.33}}


_PUNCTUATION = set(string.punctuation)  # ASCII only, as in the official script


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


class MissingPredictionsError(KeyError):
    """Some questions of the data have no prediction (or no no-answer probability)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation and the articles a/an/the, squeeze whitespace.

    >>> normalize_answer("The  Eiffel Tower!")
    'eiffel tower'
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    if not text:
        return []
    return normalize_answer(text).split()


def compute_exact(gold: str, prediction: str) -> int:
    """1 when the normalised strings are equal, else 0.

    >>> compute_exact("the Tower", "tower.")
    1
    """
    return int(normalize_answer(gold) == normalize_answer(prediction))


def compute_f1(gold: str, prediction: str) -> float:
    """Token-overlap F1 of the normalised strings; an empty side scores 1 only against empty.

    >>> round(compute_f1("Eiffel Tower", "the tower in Paris"), 4)
    0.4
    """
    gold_tokens = _tokens(gold)
    pred_tokens = _tokens(prediction)
    if len(gold_tokens) == 0 or len(pred_tokens) == 0:
        return int(gold_tokens == pred_tokens)
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def _scorable_golds(texts) -> list[str]:
    # Gold answers that normalise to nothing are dropped; an unanswerable question's only
    # correct answer is the empty string.
    kept = [t for t in texts if normalize_answer(t)]
    return kept or [""]


def question_scores(gold: dict, predictions: dict) -> tuple[dict, dict]:
    """Per-question EM and F1 (max over gold answers) for the ids present in ``predictions``.

    ``gold`` maps id to its list of gold answer texts (empty for unanswerable), in data order.
    Returns ``(exact, f1)`` dicts in data order; ids without a prediction are left out.

    >>> question_scores({"q1": ["Paris"], "q2": []}, {"q1": "paris", "q2": "Lyon"})
    ({'q1': 1, 'q2': 0}, {'q1': 1.0, 'q2': 0})
    """
    exact, f1 = {}, {}
    for qid, texts in gold.items():
        if qid not in predictions:
            continue
        golds = _scorable_golds(texts)
        prediction = predictions[qid]
        exact[qid] = max(compute_exact(g, prediction) for g in golds)
        f1[qid] = max(compute_f1(g, prediction) for g in golds)
    return exact, f1


def abstain_baseline(scores: dict) -> float | None:
    """EM and F1 (%) of a model that always abstains: the unanswerable share of the questions, the
    floor every SQuAD 2.0 headline score should be read against. None when the scores do not split.

    >>> abstain_baseline({"total": 779, "NoAns_total": 405})
    51.99
    """
    if not scores.get("total") or "NoAns_total" not in scores:
        return None
    return round(100.0 * scores["NoAns_total"] / scores["total"], 2)


def table_scores(table, column: str = "answer"):
    """Per-question official EM and F1 of the texts in ``table[column]`` (a run's ``answer``, or its
    ``best_span_text`` to score the best span whatever the decision), as float arrays in table order.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"id": ["a", "b"], "answer_texts": [["Paris"], []], "answer": ["paris", ""]})
    >>> [x.tolist() for x in table_scores(t)]
    [[1.0, 1.0], [1.0, 1.0]]
    """
    import numpy as np

    from .data import gold_answers

    exact, f1 = question_scores(gold_answers(table), dict(zip(table["id"], table[column])))
    return (np.array([exact[i] for i in table["id"]], dtype=float), np.array([f1[i] for i in table["id"]], dtype=float))


def _apply_no_answer_threshold(scores, na_probs, has_answer, threshold, fixed=()):
    thresholded = {}
    for qid, score in scores.items():
        if qid not in fixed and na_probs[qid] > threshold:
            thresholded[qid] = float(not has_answer[qid])
        else:
            thresholded[qid] = score
    return thresholded


def _eval_dict(exact, f1, qids=None) -> OrderedDict:
    if not qids:
        total = len(exact)
        return OrderedDict(
            [
                ("exact", 100.0 * sum(exact.values()) / total),
                ("f1", 100.0 * sum(f1.values()) / total),
                ("total", total),
            ]
        )
    total = len(qids)
    return OrderedDict(
        [
            ("exact", 100.0 * sum(exact[k] for k in qids) / total),
            ("f1", 100.0 * sum(f1[k] for k in qids) / total),
            ("total", total),
        ]
    )


def _merge(main: dict, new: dict, prefix: str) -> None:
    for key in new:
        main[f"{prefix}_{key}"] = new[key]


def _best_threshold(predictions, scores, na_probs, has_answer, fixed=()):
    # Start from "abstain on everything", then admit questions in increasing no-answer
    # probability; ties keep na_probs' order (a stable sort), as the official script does.
    current = sum(1 for k in has_answer if not has_answer[k] and k not in fixed)
    best, best_threshold = current, 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores or qid in fixed:
            continue
        if has_answer[qid]:
            diff = scores[qid]
        else:
            diff = -1 if predictions[qid] else 0
        current += diff
        if current > best:
            best, best_threshold = current, na_probs[qid]
    return 100.0 * best / len(scores), best_threshold


def precision_recall_curve(scores, na_probs, has_answer):
    """The official PR curve: questions admitted in increasing no-answer probability.

    Returns ``(precisions, recalls, average_precision)``; a point is added only where a threshold
    can be placed (between distinct probabilities), as in the official script.
    """
    num_true_pos = sum(1 for v in has_answer.values() if v)
    true_pos = 0.0
    precisions, recalls = [1.0], [0.0]
    avg_prec = 0.0
    ordered = sorted(na_probs, key=lambda k: na_probs[k])
    for i, qid in enumerate(ordered):
        if has_answer[qid]:
            true_pos += scores[qid]
        cur_p = true_pos / float(i + 1)
        cur_r = true_pos / float(num_true_pos)
        if i == len(ordered) - 1 or na_probs[qid] != na_probs[ordered[i + 1]]:
            avg_prec += cur_p * (cur_r - recalls[-1])
            precisions.append(cur_p)
            recalls.append(cur_r)
    return precisions, recalls, 100.0 * avg_prec


def _precision_recall(scores, na_probs, num_true_pos, has_answer, out_image=None, title=None):
    precisions, recalls, ap = precision_recall_curve(scores, na_probs, has_answer)
    if out_image:
        _plot_pr_curve(precisions, recalls, out_image, title)
    return {"ap": ap}


def _figure():
    # A bare Figure on the Agg canvas: no pyplot, so no backend is switched in the caller's session.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()  # pyplot's default size and dpi (rcParams), as the official script draws
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _plot_pr_curve(precisions, recalls, out_image, title):
    fig, ax = _figure()
    ax.step(recalls, precisions, color="b", alpha=0.2, where="post")
    ax.fill_between(recalls, precisions, step="post", alpha=0.2, color="b")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim([0.0, 1.05])
    ax.set_ylim([0.0, 1.05])
    ax.set_title(title)
    fig.savefig(out_image)


def _histogram_na_prob(na_probs, qids, image_dir, name):
    if not qids:
        return
    import numpy as np

    values = [na_probs[k] for k in qids if k in na_probs]  # missing predictions (scored wrong) have none
    if not values:
        return
    fig, ax = _figure()
    ax.hist(values, weights=np.ones_like(values) / float(len(values)), bins=20, range=(0.0, 1.0))
    ax.set_xlabel("Model probability of no-answer")
    ax.set_ylabel("Proportion of dataset")
    ax.set_title(f"Histogram of no-answer probability: {name}")
    fig.savefig(os.path.join(image_dir, f"na_prob_hist_{name}.png"))


def _pr_analysis(main, exact_raw, f1_raw, na_probs, has_answer, out_image_dir):
    os.makedirs(out_image_dir, exist_ok=True)
    # The official script crashes on no-answer probabilities for ids outside the data.
    na_probs = {k: v for k, v in na_probs.items() if k in has_answer}
    num_true_pos = sum(1 for v in has_answer.values() if v)
    if num_true_pos == 0:
        return
    pr_exact = _precision_recall(exact_raw, na_probs, num_true_pos, has_answer,
                                 os.path.join(out_image_dir, "pr_exact.png"),
                                 "Precision-Recall curve for Exact Match score")
    pr_f1 = _precision_recall(f1_raw, na_probs, num_true_pos, has_answer,
                              os.path.join(out_image_dir, "pr_f1.png"),
                              "Precision-Recall curve for F1 score")
    oracle = {k: float(v) for k, v in has_answer.items()}
    pr_oracle = _precision_recall(oracle, na_probs, num_true_pos, has_answer,
                                  os.path.join(out_image_dir, "pr_oracle.png"),
                                  "Oracle Precision-Recall curve (binary task of HasAns vs. NoAns)")
    _merge(main, pr_exact, "pr_exact")
    _merge(main, pr_f1, "pr_f1")
    _merge(main, pr_oracle, "pr_oracle")


def _check_scoring_inputs(gold: dict, predictions: dict, na_probs, out_image_dir, missing: str) -> list:
    """What the official script would crash on, said by id (or warned: predictions for unknown ids are
    ignored); returns the questions without a prediction (allowed with ``missing="wrong"``)."""
    if missing not in ("error", "wrong"):
        raise ValueError("missing must be 'error' or 'wrong'")
    unknown = [k for k in predictions if k not in gold]
    if unknown:
        warnings.warn(f"{len(unknown)} prediction id(s) are not in the data and are ignored: "
                      f"{name_some(unknown)}", stacklevel=3)
    absent = [k for k in gold if k not in predictions]
    if absent and missing == "error":
        raise MissingPredictionsError(
            f"{len(absent)} of {len(gold)} questions have no prediction: {name_some(absent)}. "
            "The official script fails here; pass missing='wrong' (CLI: --missing-as-wrong) "
            "to score them as wrong answers."
        )
    if out_image_dir is not None and os.path.exists(out_image_dir) and not os.path.isdir(out_image_dir):
        raise NotADirectoryError(f"{out_image_dir}: exists and is not a directory; the images need a directory "
                                 "(-p / out_image_dir)")
    if na_probs is not None:
        not_numbers = [k for k, v in na_probs.items()
                       if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v)]
        if not_numbers:
            raise ValueError(f"{len(not_numbers)} no-answer probabilit(ies) are not numbers (NaN or another type): "
                             f"{name_some(not_numbers)}; the threshold search cannot rank them")
        without_prob = [k for k in gold if k in predictions and k not in na_probs]
        if without_prob:
            raise MissingPredictionsError(
                f"{len(without_prob)} question(s) have a prediction but no no-answer probability: "
                f"{name_some(without_prob)}"
            )
    return absent


def squad_v2_scores(
    gold: dict,
    predictions: dict,
    na_probs: dict | None = None,
    na_prob_thresh: float = 1.0,
    out_image_dir: str | None = None,
    missing: str = "error",
) -> OrderedDict:
    """Score predictions as the official SQuAD 2.0 script does; returns its JSON dict.

    ``gold``: ``{id: [gold texts]}`` in data order (see :func:`xdanalysis.core.data.gold_answers`).
    ``predictions``: ``{id: answer}`` (``""`` to abstain). ``na_probs``: ``{id: probability of
    no answer}``, in its file's order (that order breaks ties in the threshold search); with it,
    ``best_*`` keys are added, and with ``out_image_dir`` too, the PR curves, the histograms and
    the ``pr_*_ap`` keys. ``missing``: ``"error"`` (the official script crashes) or ``"wrong"``
    (missing predictions score 0 on EM and F1 at every threshold).

    It follows the official script's ``main()`` step for step (the checks the official script does not
    make are in :func:`_check_scoring_inputs`), so the two can be read side by side.

    >>> s = squad_v2_scores({"q1": ["Paris"], "q2": []}, {"q1": "Paris", "q2": ""})
    >>> s["exact"], s["HasAns_total"], s["NoAns_exact"]
    (100.0, 1, 100.0)
    """
    absent = _check_scoring_inputs(gold, predictions, na_probs, out_image_dir, missing)
    has_answer = {qid: bool(texts) for qid, texts in gold.items()}
    exact_raw, f1_raw = question_scores(gold, predictions)
    fixed = set(absent)
    for qid in absent:  # only reached with missing="wrong"
        exact_raw[qid] = 0
        f1_raw[qid] = 0
    if absent:  # keep data order, as the official dicts have it
        exact_raw = {k: exact_raw[k] for k in gold}
        f1_raw = {k: f1_raw[k] for k in gold}
    probs = na_probs if na_probs is not None else {k: 0.0 for k in predictions}
    exact = _apply_no_answer_threshold(exact_raw, probs, has_answer, na_prob_thresh, fixed)
    f1 = _apply_no_answer_threshold(f1_raw, probs, has_answer, na_prob_thresh, fixed)
    result = _eval_dict(exact, f1)
    has_ids = [k for k, v in has_answer.items() if v]
    no_ids = [k for k, v in has_answer.items() if not v]
    if has_ids:
        _merge(result, _eval_dict(exact, f1, has_ids), "HasAns")
    if no_ids:
        _merge(result, _eval_dict(exact, f1, no_ids), "NoAns")
    if na_probs is not None:
        preds_or_missing = {**{k: "" for k in absent}, **predictions}
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(
            preds_or_missing, exact_raw, na_probs, has_answer, fixed)
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(
            preds_or_missing, f1_raw, na_probs, has_answer, fixed)
        if out_image_dir:
            _pr_analysis(result, exact_raw, f1_raw, na_probs, has_answer, out_image_dir)
            _histogram_na_prob(na_probs, has_ids, out_image_dir, "hasAns")
            _histogram_na_prob(na_probs, no_ids, out_image_dir, "noAns")
    return result
