"""Render one question for a person: context with gold, plausible and predicted spans coloured."""

from __future__ import annotations

import html

import pandas as pd

from ..runs.run import table_of

__all__ = ['COLORS', 'example_html', 'probe_pair_html', 'show_example', 'show_probe_pair']


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

    table = table_of(run_or_table)
    matches = table[table["id"] == qid]
    if matches.empty:
        raise KeyError(f"no question with id {qid!r} in this run")
    nbest = run_or_table.nbest.get(qid) if hasattr(run_or_table, "nbest") else None
    if "outcome" not in table.columns:
        from ..analysis.outcomes import outcomes

        matches = outcomes(matches)
    return HTML(example_html(matches.iloc[0], nbest, top))


_DIFF_STYLE = {"removed": "background:#f4b6b6;text-decoration:line-through", "added": "background:#b7e4c7",
               "answer": "outline:2px solid #4c72b0;border-radius:3px"}


def _diff_words(before: str, after: str) -> tuple[str, str]:
    """Both texts as HTML, words only in ``before`` struck through, words only in ``after`` marked
    (difflib on whitespace-separated words; a moved sentence shows as removed here, added there)."""
    import difflib
    import re

    a, b = re.findall(r"\S+\s*", before), re.findall(r"\S+\s*", after)  # words with their trailing space
    left, right = [], []
    matcher = difflib.SequenceMatcher(a=[w.strip() for w in a], b=[w.strip() for w in b], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():  # compared without the spaces: "colonies." == "colonies. "
        old, new = html.escape("".join(a[i1:i2])), html.escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(old)
            right.append(new)
            continue
        if old:
            left.append(f'<span style="{_DIFF_STYLE["removed"]}">{old}</span>')
        if new:
            right.append(f'<span style="{_DIFF_STYLE["added"]}">{new}</span>')
    return "".join(left), "".join(right)


def probe_pair_html(row) -> str:
    """One probed question beside its original: the questions and contexts with what the probe
    removed (struck through) and added (green), the gold, each answer and outcome, and whether
    the expectation was met. ``row`` is a row of :func:`xdanalysis.analysis.probes.summary.probe_results`."""
    row = row if isinstance(row, pd.Series) else pd.Series(row)
    q_left, q_right = _diff_words(row["original_question"], row["probed_question"])
    c_left, c_right = _diff_words(row["original_context"], row["probed_context"])

    def side(title, question, context, side_name):
        gold = ", ".join(f"“{html.escape(t)}”" for t in dict.fromkeys(row[f"{side_name}_answer_texts"])) \
            or "<i>no answer</i>"
        answer = html.escape(row[f"{side_name}_answer"]) or "<i>abstained</i>"
        return (f'<div style="flex:1;min-width:20em;border:1px solid #ddd;padding:6px">'
                f"<b>{title}</b><br><b>Q:</b> {question}<br><b>gold:</b> {gold}<br>"
                f"<b>model:</b> {answer} <i>({row[f'{side_name}_outcome']}, F1 {100 * row[f'{side_name}_f1']:.0f}, "
                f"null odds {row[f'{side_name}_null_odds']:.2f})</i>"
                f'<p style="font-size:0.9em;line-height:1.4">{context}</p></div>')

    verdict = ("<span style='color:#2b8a3e'>expectation met</span>" if row["met"]
               else "<span style='color:#c92a2a'>expectation NOT met</span>")
    return (f'<div style="font-family:sans-serif;max-width:80em;margin:4px 0">'
            f"<div><b>{html.escape(row['probe'])}</b> on <code>{html.escape(row['source_id'])}</code> · expect "
            f"<b>{html.escape(row['expect'])}</b> · {verdict} · <i>{html.escape(str(row['note']))[:300]}</i></div>"
            f'<div style="display:flex;gap:8px">{side("original", q_left, c_left, "original")}'
            f'{side("probed", q_right, c_right, "probed")}</div></div>')


def show_probe_pair(results, qid: str):
    """Display :func:`probe_pair_html` for the probed question ``qid`` (``"<source_id>~<probe>"``)."""
    from IPython.display import HTML, display

    results = table_of(results)  # a ProbeRuns, or its table
    picked = results[results["id"] == qid]
    if picked.empty:
        raise KeyError(f"no probed question {qid!r} in these results; ids look like {results['id'].iloc[0]!r}"
                       if len(results) else f"no probed question {qid!r}: the results are empty")
    display(HTML(probe_pair_html(picked.iloc[0])))
