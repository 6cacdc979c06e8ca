"""Render one question for a person: context with gold, plausible and predicted spans coloured."""

from __future__ import annotations

import html

import pandas as pd

__all__ = ["example_html", "show_example"]

COLORS = {"gold": "#b7e4c7", "plausible": "#ffe8a3", "prediction": "#a9c7ff", "best span (abstained)": "#d9d9d9"}


def _highlight(context: str, spans: dict) -> str:
    """Wrap each character in the colours of the spans covering it; overlaps get stripes."""
    marks = [set() for _ in context]
    for kind, ranges in spans.items():
        for start, end in ranges:
            for i in range(max(0, start), min(len(context), end)):
                marks[i].add(kind)
    pieces, i = [], 0
    while i < len(context):
        j = i
        while j < len(context) and marks[j] == marks[i]:
            j += 1
        text = html.escape(context[i:j])
        kinds = sorted(marks[i])
        if not kinds:
            pieces.append(text)
        else:
            colors = [COLORS[k] for k in kinds]
            background = (colors[0] if len(colors) == 1 else
                          "repeating-linear-gradient(45deg," + ",".join(f"{c} {6 * n}px,{c} {6 * (n + 1)}px"
                                                                      for n, c in enumerate(colors)) + ")")
            pieces.append(f'<span title="{" + ".join(kinds)}" style="background:{background};'
                          f'border-radius:3px;padding:0 1px">{text}</span>')
        i = j
    return "".join(pieces)


def example_html(row, nbest: list | None = None, top: int = 5) -> str:
    """HTML for one run-table row: question, outcome, highlighted context, scores and n-best."""
    row = row if isinstance(row, pd.Series) else pd.Series(row)
    spans = {
        "gold": [(s, s + len(t)) for t, s in zip(row["answer_texts"], row["answer_starts"])],
        "plausible": [(s, s + len(t)) for t, s in zip(row["plausible_texts"], row["plausible_starts"])],
        "prediction": [(int(row["answer_start"]), int(row["answer_end"]))] if row["answer"] else [],
        # the span the model would have given, had it not abstained
        "best span (abstained)": ([(int(row["answer_start"]), int(row["answer_end"]))]
                                  if not row["answer"] and row["best_span_text"] else []),
    }
    legend = " ".join(f'<span style="background:{c};padding:0 4px;border-radius:3px">{k}</span>'
                      for k, c in COLORS.items() if k != "best span (abstained)" or spans[k])
    gold = ", ".join(f"“{html.escape(t)}”" for t in dict.fromkeys(row["answer_texts"])) or "<i>no answer</i>"
    outcome = row.get("outcome", "")
    trap = " (plausible-answer trap)" if row.get("plausible_trap", False) else ""
    window = (f"best span in window {int(row['best_window']) + 1} of {int(row['n_windows'])}"
              if row["best_span_text"] else "no admissible span")
    parts = [
        '<div style="font-family:sans-serif;max-width:60em;border:1px solid #ddd;padding:8px;margin:4px 0">',
        f"<div><b>{html.escape(str(row['id']))}</b> · {html.escape(str(row['title']))} · "
        f"<b>{html.escape(str(outcome))}</b>{trap}</div>",
        f"<div style='font-size:1.1em;margin:4px 0'>Q: {html.escape(row['question'])}</div>",
        f"<div>gold: {gold} · prediction: <b>{html.escape(row['answer']) or '<i>(abstained)</i>'}</b> "
        f"· best span: “{html.escape(row['best_span_text'])}” · EM {int(row['exact'])} · F1 {row['f1']:.2f}</div>",
        f"<div>null score {row['null_score']:.2f} · best span score {row['best_span_score']:.2f} · "
        f"null odds {row['null_odds']:+.2f} · {window}</div>",
        f"<div style='margin:6px 0;line-height:1.6'>{_highlight(row['context'], spans)}</div>",
        f"<div style='font-size:0.85em'>{legend}</div>",
    ]
    if nbest:
        cells = "".join(
            f"<tr><td>{i + 1}</td><td>{html.escape(c['text']) or '<i>(no answer)</i>'}</td>"
            f"<td>{c['start_logit']:.2f}</td><td>{c['end_logit']:.2f}</td><td>{c['score']:.2f}</td>"
            f"<td>{c['probability']:.3f}</td><td>{c.get('window', 0) + 1}</td></tr>"
            for i, c in enumerate(nbest[:top]))
        parts.append("<table style='font-size:0.85em'><tr><th>#</th><th>n-best text</th><th>start</th><th>end</th>"
                     f"<th>score</th><th>prob.</th><th>window</th></tr>{cells}</table>")
    parts.append("</div>")
    return "".join(parts)


def show_example(run_or_table, qid: str, top: int = 5):
    """Display one question in the notebook (see :func:`example_html`).

    Example::

        show_example(run, "56ddde6b9a695914005b9628")
    """
    from IPython.display import HTML

    table = getattr(run_or_table, "table", run_or_table)
    matches = table[table["id"] == qid]
    if matches.empty:
        raise KeyError(f"no question with id {qid!r} in this run")
    nbest = run_or_table.nbest.get(qid) if hasattr(run_or_table, "nbest") else None
    if "outcome" not in table.columns:
        from .errors import outcomes

        matches = outcomes(matches)
    return HTML(example_html(matches.iloc[0], nbest, top))
