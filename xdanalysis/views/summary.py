"""The text summary of a run's scores, shared by the command line, the report and the notebooks."""

from __future__ import annotations

from ..core.common import logit
from ..core.metrics import abstain_baseline
from ..model.loading import CARD_FIGURES

__all__ = ['summary_text']


def summary_text(scores: dict, model: str, run=None) -> str:
    """A compact table of the scores: overall, answerable, unanswerable, what always abstaining
    would score (and a warning when the model is within a point of it), best thresholds; with a
    run, where it came from and any warning about it (articles the model trained on, questions
    cut to fit a window).

    >>> print(summary_text({"exact": 50.0, "f1": 60.0, "total": 2}, "m").splitlines()[-1])
    overall                        50.00   60.00          2
    """
    card = CARD_FIGURES.get(model)
    lines = [f"model: {model}"]
    if run is not None:
        info = run.info
        settings = info["settings"]
        lines.append(f"data:  {settings.get('data', 'not recorded')} ({len(run.table)} questions)")
        lines.append(f"run:   {run.path}  ({info.get('questions_per_second')} q/s, peak RSS {info.get('peak_rss_mb')} MB)")
        overlap = settings.get("trained_on_overlap")
        if overlap and overlap.get("questions"):
            lines.append(f"WARNING: {overlap['questions']} of {overlap['of']} questions come from articles this model "
                         f"was trained on ({', '.join(overlap['titles'][:4])}{' ...' if len(overlap['titles']) > 4 else ''}):"
                         " scores there are inflated; keep held-out articles (--titles).")
        if info.get("questions_truncated"):
            lines.append(f"note: {info['questions_truncated']} question(s) were longer than max_query_length "
                         f"({settings.get('max_query_length')} tokens) and were cut (column question_truncated)")
    header = f"{'':28}{'EM':>8}{'F1':>8}{'questions':>11}"
    if card:
        header += f"{'card EM':>10}{'card F1':>9}"
    lines += ["", header]
    rows = [("overall", ""), ("answerable (HasAns)", "HasAns_"), ("unanswerable (NoAns)", "NoAns_")]
    for label, prefix in rows:
        if f"{prefix}total" not in scores:
            continue
        line = f"{label:28}{scores[prefix + 'exact']:8.2f}{scores[prefix + 'f1']:8.2f}{scores[prefix + 'total']:11d}"
        if card and not prefix:
            line += f"{card['exact']:10.2f}{card['f1']:9.2f}"
        lines.append(line)
    baseline = abstain_baseline(scores)
    if baseline is not None:
        lines.append(f"{'always abstaining':28}{baseline:8.2f}{baseline:8.2f}{scores['total']:11d}")
        if scores["f1"] <= baseline + 1.0:
            answered = f" (it answered {int((run.table['answer'] != '').sum())} of {len(run.table)})" if run else ""
            lines.append(f"WARNING: F1 {scores['f1']:.2f} is within a point of always abstaining ({baseline:.2f}): "
                         f"the model hardly answers{answered}; read the answerable row, not the overall one.")
    if "best_f1" in scores:
        lines.append("")
        for key in ("exact", "f1"):
            p = scores[f"best_{key}_thresh"]
            lines.append(f"best {key.upper() if key == 'f1' else 'EM'}: {scores['best_' + key]:.2f} at no-answer "
                         f"probability {p:.4f} (null-odds threshold {logit(p):+.3f})")
    return "\n".join(lines)
