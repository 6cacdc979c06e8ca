"""A static, self-contained HTML report of a run's error analysis (figures embedded)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from .display import example_html
from .errors import OUTCOMES, SLICES, confusion, outcomes, slice_table, threshold_curve, threshold_summary

__all__ = ["write_report", "REPORT_SECTIONS"]

REPORT_SECTIONS = ["Scores", "Gold vs model", "Outcomes", "Slices", "Thresholds", "Examples"]


def _png(draw, size=(8, 3.8)) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    draw(figure)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _table(frame: pd.DataFrame, digits: int = 2) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, classes="t", na_rep="–")


def _wide(table_html: str) -> str:
    return f"<div class='wide'>{table_html}</div>"  # scrolls inside its section, never past the page


def _with_ci(value, low, high) -> str:
    return "–" if pd.isna(value) else f"{value:.1f} [{low:.1f}–{high:.1f}]"


def _slice_display(frame: pd.DataFrame) -> pd.DataFrame:
    """A slice table for reading: intervals inside the cells, counts and rates named plainly."""
    shown = pd.DataFrame({
        "questions": frame["count"],
        "share of questions (%)": 100 * frame["share"],
        "EM % [95% CI]": [_with_ci(*v) for v in zip(frame["EM"], frame["EM_low"], frame["EM_high"])],
        "F1 % [95% CI]": [_with_ci(*v) for v in zip(frame["F1"], frame["F1_low"], frame["F1_high"])],
        "answerable: questions": frame["HasAns_count"],
        "answerable: F1 %": frame["HasAns_F1"],
        "unanswerable: questions": frame["NoAns_count"],
        "unanswerable: F1 %": frame["NoAns_F1"],
        **{f"{o} (questions)": frame[o] for o in OUTCOMES},
    })
    shown.index = pd.Index(frame["bucket"], name=frame.attrs.get("slice", "bucket"))
    return shown


def write_report(run, out, n_boot: int = 1000, seed: int = 0, examples_per_outcome: int = 3) -> Path:
    """Write the error-analysis report of ``run`` to ``out`` (an .html file) and return its path.

    Example::

        write_report(load_run("runs/demo"), "runs/demo/report.html")
    """
    from .summary import summary_text
    from .plots import (plot_confusion, plot_official_curves, plot_outcomes, plot_scores, plot_slice,
                        plot_threshold_curve)

    table = outcomes(run.table)
    scores = run.scores()
    settings = run.info.get("settings", {})
    model = settings.get("model_given") or settings.get("model")  # as the user gave it
    body = [f"<h1>xdanalysis report</h1><p>model <code>{html.escape(str(model))}</code> · data "
            f"<code>{html.escape(str(settings.get('data')))}</code> · {len(table)} questions · run "
            f"<code>{html.escape(str(run.path))}</code> · null-odds threshold {run.threshold:g}</p>"]

    body.append("<h2 id='scores'>Scores</h2>")
    body.append(f"<pre>{html.escape(summary_text(scores, str(model), run))}</pre>")
    body.append(_png(lambda f: plot_scores(scores, ax=f.add_subplot()), (6.5, 3.8)))

    body.append("<h2 id='gold-vs-model'>Gold vs model</h2>")
    matrix = confusion(table)
    body.append(_table(matrix))
    body.append(_png(lambda f: plot_confusion(matrix, ax=f.add_subplot()), (5, 3.8)))

    body.append("<h2 id='outcomes'>Outcomes</h2>")
    mix = table.groupby("has_answer")["outcome"].value_counts().unstack(0, fill_value=0)
    mix = mix.reindex(OUTCOMES, fill_value=0).rename(columns={True: "answerable", False: "unanswerable"})
    body.append(_table(mix))
    body.append(f"<p>Plausible-answer traps (false answers overlapping SQuAD 2.0's plausible answer): "
                f"{int(table['plausible_trap'].sum())} of {int((table['outcome'] == 'false_answer').sum())} "
                "false answers.</p>")
    body.append(_png(lambda f: plot_outcomes(table, ax=f.add_subplot())))

    body.append("<h2 id='slices'>Slices</h2><p>Each bucket: EM/F1 (%) with seeded bootstrap 95% intervals "
                f"({n_boot} resamples), answerable (HasAns) and unanswerable (NoAns) split, outcome mix.</p>")
    for name, spec in SLICES.items():
        frame = slice_table(table, name, n_boot=n_boot, seed=seed)
        body.append(f"<h3>{html.escape(name)}</h3><p>{html.escape(spec.description)}</p>")
        body.append(_wide(_table(_slice_display(frame), 1)))
        body.append(_png(lambda f, fr=frame: plot_slice(fr, ax=f.add_subplot()),
                         (max(6, 0.7 * len(frame) + 2), 3.8)))

    body.append("<h2 id='thresholds'>Thresholds</h2><p>The model card's figures use threshold 0.0 (what the "
                "Hugging Face evaluation does when it is given no no-answer probabilities); below, the official "
                "search over this run's no-answer probabilities.</p>")
    summary = threshold_summary(run)  # "current" is the run's own threshold
    body.append(_table(summary.set_index(["metric", "threshold"]).rename(columns={
        "null_odds_threshold": "null-odds threshold", "overall": "overall %", "HasAns": "answerable %",
        "NoAns": "unanswerable %"}), 3))
    curve = threshold_curve(table)
    curve.attrs["n"] = len(table)
    body.append(_png(lambda f: plot_threshold_curve(curve, summary, ax=f.add_subplot())))
    body.append(_png(lambda f: plot_official_curves(table, axes=f.subplots(1, 2)), (11, 3.8)))

    body.append("<h2 id='examples'>Examples</h2><p>The most confident questions of each outcome "
                "(largest |null odds|).</p>")
    nbest = run.nbest
    for outcome in OUTCOMES:
        picked = table[table["outcome"] == outcome]
        if picked.empty:
            continue
        picked = picked.iloc[picked["null_odds"].abs().to_numpy().argsort()[::-1][:examples_per_outcome]]
        body.append(f"<h3>{outcome} ({int((table['outcome'] == outcome).sum())})</h3>")
        body.extend(example_html(row, nbest.get(row["id"])) for _, row in picked.iterrows())

    style = ("body{font-family:sans-serif;margin:2em;max-width:75em} table.t{border-collapse:collapse;font-size:0.8em}"
             "table.t td,table.t th{padding:2px 6px;border-bottom:1px solid #eee;text-align:right}"
             "table.t td,table.t tbody th{white-space:nowrap} img{max-width:100%} div.wide{overflow-x:auto;max-width:100%}")
    nav = " · ".join(f"<a href='#{s.lower().replace(' ', '-')}'>{s}</a>" for s in REPORT_SECTIONS)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>xdanalysis report</title>"
            f"<style>{style}</style></head><body><p>{nav}</p>{''.join(body)}</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
