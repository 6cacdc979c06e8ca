"""The text summary of a run's scores, shared by the command line, the report and the notebooks."""

from __future__ import annotations

from ..core.common import logit
from ..core.metrics import abstain_baseline
from ..core.metrics import CARD_FIGURES

__all__ = ['ABSTAIN_MARGIN', 'abstaining_warning', 'summary_text']

# A model whose F1 is within this many points of always abstaining is flagged wherever its score is shown.
ABSTAIN_MARGIN = 1.0

# "Hardly answers": at most this share of the questions answered (or, without the run, answerable F1 at
# most this share of 100).
HARDLY = 0.1


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
    warning = abstaining_warning(scores, run=run)
    if warning:
        lines.append(f"WARNING: {warning}")
    if "best_f1" in scores:
        lines.append("")
        for key in ("exact", "f1"):
            p = scores[f"best_{key}_thresh"]
            lines.append(f"best {key.upper() if key == 'f1' else 'EM'}: {scores['best_' + key]:.2f} at no-answer "
                         f"probability {p:.4f} (null-odds threshold {logit(p):+.3f})")
    return "\n".join(lines)


def abstaining_warning(scores: dict, *, label: str = "the model", run=None) -> str | None:
    """A sentence when ``scores`` (F1) lie within ``ABSTAIN_MARGIN`` points of always abstaining (its
    overall score says nothing of its answers; "it hardly answers" only when it answered at most
    ``HARDLY`` of the questions) or more than that below it (abstaining everywhere would score better);
    else None.

    >>> abstaining_warning({"f1": 50.5, "total": 10, "NoAns_total": 5, "HasAns_f1": 5.0}, label="student")
    'student: F1 50.50 is within a point of always abstaining (50.00): it hardly answers (answerable F1 5.00); read the answerable row, not the overall one.'
    """
    baseline = abstain_baseline(scores)
    if baseline is None:
        return None
    if scores["f1"] < baseline - ABSTAIN_MARGIN:
        return (f"{label}: F1 {scores['f1']:.2f} is {baseline - scores['f1']:.2f} points below always abstaining "
                f"({baseline:.2f}): abstaining on every question would score better.")
    if scores["f1"] > baseline + ABSTAIN_MARGIN:
        return None
    if run is not None:
        answered, total = int((run.table["answer"] != "").sum()), len(run.table)
        rarely, detail = answered <= HARDLY * total, f"it answered {answered} of {total}"
    else:
        rarely, detail = scores.get("HasAns_f1", 100.0) <= 100 * HARDLY, (
            f"answerable F1 {scores['HasAns_f1']:.2f}" if "HasAns_f1" in scores else "")
    how = f"it hardly answers ({detail})" if rarely else f"its answers and abstentions cancel out ({detail})"
    return (f"{label}: F1 {scores['f1']:.2f} is within {'a point' if ABSTAIN_MARGIN == 1 else f'{ABSTAIN_MARGIN:g} points'}"
            f" of always abstaining ({baseline:.2f}): {how}; read the answerable row, "
            "not the overall one.")
