"""A static, self-contained HTML report of a run's error analysis (figures embedded)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from ..analysis.outcomes import OUTCOMES, confusion, outcomes
from ..analysis.causes import with_causes
from ..analysis.slices import INTERSECTION_SLICES, SLICES, applicable_slices, degenerate_slice, slice_table
from ..core.stats import MIN_INTERVAL_COUNT, N_BOOT
from ..analysis.thresholds import threshold_curve, threshold_summary
from ..core.io import refuse_foreign_file, write_text
from ..views.display import example_html
from ..views.figures import render_png
from ..views.tables import threshold_audit_table

__all__ = ['CAUSE_SECTION', 'COMPRESSION_SECTION', 'PROBE_SECTION', 'REPORT_SECTIONS', 'compression_section',
           'probes_of_run', 'write_compression_report', 'write_report']


REPORT_SECTIONS = ["Scores", "Gold vs model", "Outcomes", "Slices", "Where errors concentrate", "Thresholds",
                   "Selective QA", "Examples"]



# Shown only when `xdanalysis probe` wrote results beside the run (its OUT/original).
PROBE_SECTION = "Robustness probes"
CAUSE_SECTION = "Why unanswerable"


# The compression lab's page (`xdanalysis compress`): one section.
COMPRESSION_SECTION = "Compression"

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:75em} table.t{border-collapse:collapse;font-size:0.8em}"
          "table.t td,table.t th{padding:2px 6px;border-bottom:1px solid #eee;text-align:right}"
          "table.t td,table.t tbody th{white-space:nowrap} img{max-width:100%} div.wide{overflow-x:auto;max-width:100%}")


def _png(draw, size=(8, 3.8)) -> str:
    """``draw(figure)`` as an embedded image."""
    data = render_png(draw, size=size, dpi=90)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _table(frame: pd.DataFrame, digits: int = 2) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, classes="t", na_rep="–")


def _wide(table_html: str) -> str:
    return f"<div class='wide'>{table_html}</div>"  # scrolls inside its section, never past the page


def _with_ci(value, low, high) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.1f} (n too small for a CI)" if pd.isna(low) else f"{value:.1f} [{low:.1f}–{high:.1f}]"


def _slice_display(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A slice table for reading, as two narrow tables (never scrolled sideways): the scores, with
    intervals inside the cells, and the outcome mix, counts and rates named plainly."""
    scores = pd.DataFrame({
        "questions": frame["count"],
        "share (%)": frame["share (%)"],
        "EM % [95% CI]": [_with_ci(*v) for v in zip(frame["EM"], frame["EM_low"], frame["EM_high"])],
        "F1 % [95% CI]": [_with_ci(*v) for v in zip(frame["F1"], frame["F1_low"], frame["F1_high"])],
        "answerable: n": frame["HasAns_count"],
        "answerable: F1 %": frame["HasAns_F1"],
        "unanswerable: n": frame["NoAns_count"],
        "unanswerable: F1 %": frame["NoAns_F1"],
    })
    mix = pd.DataFrame({o.replace("_", " "): frame[o] for o in OUTCOMES})
    for shown in (scores, mix):
        shown.index = pd.Index(frame["bucket"], name=frame["slice"].iloc[0] if len(frame) else "bucket")
    return scores, mix


def probes_of_run(run) -> pd.DataFrame | None:
    """The probe results whose original run is ``run`` (``xdanalysis probe --out DIR`` puts the
    run in ``DIR/original`` and the results in ``DIR/probes.parquet``), or None."""
    from ..labs.probes import load_probes

    folder = Path(run.path).parent
    if not (folder / "probes.parquet").exists():
        return None
    results = load_probes(folder)
    return results if results.record.get("original_run") == Path(run.path).name else None


def _selective_section(run, table, n_boot: int, seed: int) -> list[str]:
    from ..analysis.calibration import reliability
    from ..analysis.selective import risk_coverage, selective_summary
    from ..analysis.thresholds import cross_fitted_threshold
    from ..views.plots import plot_reliability, plot_risk_coverage

    body = ["<h2 id='selective-qa'>Selective QA</h2><p>Answer only the most confident questions "
            "(lowest null odds first) and abstain on the rest: risk is 100 − F1 of the answered ones; AURC is "
            "its mean over every coverage (lower is better), the oracle the same answers in the best order.</p>"]
    curve = risk_coverage(table)
    body.append(_table(selective_summary(table).set_index("bucket"), 1))
    body.append(_png(lambda f: plot_risk_coverage(curve, ax=f.add_subplot()), (6.5, 4)))
    body.append("<h3>Calibration</h3><p>The probability the model gave its decision (the n-best probability of "
                "the chosen span, or the no-answer probability when it abstained) against how often the decision "
                "was right (EM). ECE: count-weighted gap over 10 bins; Brier: mean squared error.</p>")
    result = reliability(run)
    body.append(_table(result.summary.set_index("group"), 3))
    body.append(_png(lambda f: plot_reliability(result, ax=f.add_subplot()), (6.5, 4.5)))
    body.append("<h3>Threshold audit</h3>")
    if len(table) < 4:
        body.append("<p>Too few questions to cross-fit a threshold.</p>")
        return body
    audit = cross_fitted_threshold(run, folds=min(5, len(table)), n_boot=n_boot, seed=seed)
    body.append(f"<p>The official <code>best_f1</code> picks its threshold on the questions it scores. Chosen on "
                f"{audit['folds'] - 1} of {audit['folds']} folds and scored on the held-out fold, the tuned "
                f"threshold gives F1 <b>{audit['cross_fitted_f1']:.2f}</b> against {audit['default_f1']:.2f} at the "
                f"run's null-odds threshold ({audit['current_threshold']:g}): an honest gain of <b>{audit['gain']:+.2f}</b> "
                f"[95% CI {audit['gain_low']:+.2f}, {audit['gain_high']:+.2f}], where the official search claims "
                f"{audit['best_f1'] - audit['default_f1']:+.2f} (optimism {audit['optimism']:.2f} points).</p>")
    body.append(_table(threshold_audit_table(audit)))
    if audit["best_threshold_is_zero"]:
        body.append("<p><b>Note:</b> the official best threshold is exactly 0, the mark of scores computed "
                    "without no-answer probabilities.</p>")
    return body


def _probe_section(results, n_boot: int, seed: int) -> list[str]:
    from ..analysis.probes.rewrites import PROBES
    from ..analysis.probes.summary import probe_examples, probe_summary
    from ..views.display import probe_pair_html
    from ..views.plots import plot_probe_consistency

    summary = probe_summary(results, n_boot=n_boot, seed=seed)
    body = [f"<h2 id='robustness-probes'>{PROBE_SECTION}</h2><p>Each probe rewrites the questions so that the "
            f"right behaviour is known (results: <code>{html.escape(str(results.path))}</code>). "
            "Met: abstained where it should, kept its answer where nothing relevant changed, or found the new "
            "answer. Intervals: bootstrap 95%.</p>"]
    body.append("<ul>" + "".join(f"<li><code>{p}</code>: {html.escape(PROBES[p].description)}</li>"
                                 for p in summary["probe"]) + "</ul>")
    body.append(_wide(_table(summary.set_index("probe"), 1)))
    body.append(_png(lambda f: plot_probe_consistency(summary, ax=f.add_subplot()),
                     (9.5, 0.42 * int((summary["n"] > 0).sum()) + 1.5)))
    body.append("<h3>An unmet expectation per probe</h3>")
    for name in summary.loc[summary["n"] > 0, "probe"]:
        failed = probe_examples(results, probe=name, met=False)
        if len(failed):
            body.append(probe_pair_html(failed.iloc[0]))
    return body


def write_report(run, out, n_boot: int = N_BOOT, seed: int = 0, examples_per_outcome: int = 3, *,
                 causes=None) -> Path:
    """Write the error-analysis report of ``run`` to ``out`` (an .html file) and return its path.
    When ``xdanalysis probe`` ran on it, the report has a robustness section too; with ``causes``
    (SQuAD2-CR's ``causes-dev.tsv`` or its table) a section on the causes of unanswerability, and the
    slice ``"unanswerable cause"`` among the slices.

    Example::

        write_report(load_run("runs/demo"), "runs/demo/report.html")
    """
    out = report_target(out)  # before any work: never a run's own file, a user's file or a directory
    table = outcomes(run.table if causes is None else with_causes(run, causes))  # a bad file fails first
    body = [*_head_and_scores(run, table), *_outcome_section(table), *_slice_section(table, n_boot, seed),
            *_concentration_section(run, table, n_boot, seed), *_threshold_section(run, table), *_selective_section(run, table, n_boot, seed)]
    if causes is not None:
        body.extend(_cause_section(run, table))
    probe_results = probes_of_run(run)
    if probe_results is not None:
        body.extend(_probe_section(probe_results, n_boot, seed))
    body.extend(_example_section(run, table, examples_per_outcome))
    style = _STYLE
    sections = REPORT_SECTIONS + ([CAUSE_SECTION] if causes is not None else []) + \
        ([PROBE_SECTION] if probe_results is not None else [])
    nav = " · ".join(f"<a href='#{s.lower().replace(' ', '-')}'>{s}</a>" for s in sections)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>xdanalysis report</title>"
            f"<style>{style}</style></head><body><p>{nav}</p>{''.join(body)}</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, page)
    return out


def _cause_section(run, table) -> list:
    from ..analysis.causes import cause_summary
    from ..views.causes import plot_cause_abstention, plot_cause_margins
    from ..views.findings import cause_finding

    summary = cause_summary(table, threshold=run.threshold)
    finding = cause_finding(summary)
    return [f"<h2 id='why-unanswerable'>{CAUSE_SECTION}</h2><p>SQuAD2-CR's human-annotated cause for each "
            "unanswerable question it covers (Lee et al., 2020): how often the model correctly abstained, with 95% "
            "Wilson intervals, and how far from the decision its null odds were.</p>",
            f"<p>{html.escape(str(finding)).replace('**', '')}</p>" if finding else "",
            _table(summary.set_index("cause"), 1),
            _png(lambda f: plot_cause_abstention(summary, ax=f.add_subplot()), (7.5, 0.5 * len(summary) + 1.6)),
            _png(lambda f: plot_cause_margins(table, threshold=run.threshold, ax=f.add_subplot()),
                 (7.5, 0.55 * len(summary) + 1.6))]


def report_target(out) -> Path:
    """Where a report may be written: a new file, or a report written before (never a run's own
    ``predictions.json``, a user's file or a directory)."""
    return refuse_foreign_file(out, is_ours=lambda f: b"<title>xdanalysis" in f.read_bytes()[:400],
                               what="an HTML report")


def _head_and_scores(run, table) -> list:
    from ..views.plots import plot_confusion, plot_scores
    from ..views.summary import summary_text

    scores = run.scores()
    settings = run.info.get("settings", {})
    model = settings.get("model_given") or settings.get("model")  # as the user gave it
    matrix = confusion(table)
    return [f"<h1>xdanalysis report</h1><p>model <code>{html.escape(str(model))}</code> · data "
            f"<code>{html.escape(str(settings.get('data')))}</code> · {len(table)} questions · run "
            f"<code>{html.escape(str(run.path))}</code> · null-odds threshold {run.threshold:g}</p>",
            "<h2 id='scores'>Scores</h2>", f"<pre>{html.escape(summary_text(scores, str(model), run))}</pre>",
            _png(lambda f: plot_scores(scores, ax=f.add_subplot()), (6.5, 3.8)),
            "<h2 id='gold-vs-model'>Gold vs model</h2>", _table(matrix),
            _png(lambda f: plot_confusion(matrix, ax=f.add_subplot()), (5, 3.8))]


def _outcome_section(table) -> list:
    from ..views.plots import plot_outcomes

    mix = table.groupby("has_answer")["outcome"].value_counts().unstack(0, fill_value=0)
    mix = mix.reindex(OUTCOMES, fill_value=0).rename(columns={True: "answerable", False: "unanswerable"})
    return ["<h2 id='outcomes'>Outcomes</h2>", _table(mix),
            f"<p>Plausible-answer traps (false answers overlapping SQuAD 2.0's plausible answer): "
            f"{int(table['plausible_trap'].sum())} of {int((table['outcome'] == 'false_answer').sum())} "
            "false answers.</p>", _png(lambda f: plot_outcomes(table, ax=f.add_subplot()))]


def _slice_section(table, n_boot: int, seed: int) -> list:
    from ..views.plots import plot_slice

    body = ["<h2 id='slices'>Slices</h2><p>Each bucket: EM/F1 (%) with seeded bootstrap 95% intervals "
            f"({n_boot} resamples; none for fewer than {MIN_INTERVAL_COUNT} questions, whose bars are pale), "
            "answerable (HasAns) and unanswerable (NoAns) split, outcome mix.</p>"]
    left_out = []
    for name in applicable_slices(table):
        spec = SLICES[name]
        frame = slice_table(table, name, n_boot=n_boot, seed=seed)
        reason = degenerate_slice(frame)
        if reason:
            left_out.append(f"<li><b>{html.escape(name)}</b>: {reason}</li>")
            continue
        scores, mix = _slice_display(frame)
        body.append(f"<h3>{html.escape(name)}</h3><p>{html.escape(spec.description)}</p>")
        body.append(_wide(_table(scores, 1)))
        body.append(_png(lambda f, fr=frame: plot_slice(fr, ax=f.add_subplot()), (max(6, 0.9 * len(frame) + 2), 4)))
        body.append("<p>Outcomes (questions):</p>" + _wide(_table(mix, 0)))
    if left_out:
        body.append(f"<h3>Left out</h3><p>Slices that would only repeat what is above:</p><ul>{''.join(left_out)}</ul>")
    return body


def _top_intersections(table, n_boot: int, seed: int, top: int = 3) -> pd.DataFrame:
    """:func:`~xdanalysis.analysis.slices.top_intersections`, as the report shows it."""
    from ..analysis.slices import top_intersections

    cells = top_intersections(table, top=top, n_boot=n_boot, seed=seed)
    return pd.DataFrame({
        "questions": cells["questions"].to_numpy(), "share of questions (%)": cells["share of questions (%)"].to_numpy(),
        "share of errors (%) [95% CI]": [_with_ci(*v) for v in zip(cells["share of errors (%)"],
                                                                   cells["share of errors low (%)"],
                                                                   cells["share of errors high (%)"])],
        "concentrated": ["yes" if c else "no: within its share of questions" for c in cells["concentrated"]],
        "F1 % [95% CI]": [_with_ci(*v) for v in zip(cells["F1"], cells["F1_low"], cells["F1_high"])],
    }, index=pd.Index(cells["cell"], name="cell"))


def _concentration_section(run, table, n_boot: int, seed: int) -> list:
    from ..analysis.error_tree import error_tree
    from ..analysis.gold import gold_audit
    from ..views.concentrate import plot_error_tree
    from ..views.findings import tree_finding

    body = ["<h2 id='where-errors-concentrate'>Where errors concentrate</h2>",
            "<p>A decision tree per side (answerable, unanswerable: fitted together, a tree only rediscovers that split) "
            "fitted to the errors on half the contexts and scored on the other half: a rule that holds keeps its error "
            "rate on the half it never saw (95% Wilson intervals).</p>"]
    for side in ("answerable", "unanswerable"):
        try:
            tree = error_tree(run, side=side, seed=seed)
        except ValueError as error:
            body.append(f"<h3>{side.capitalize()} questions</h3><p>No error tree: {html.escape(str(error))}.</p>")
            continue
        leaves = tree.leaves[["rule", "count", "error_rate", "low", "high", "held_out_error_rate", "share of errors (%)",
                              "verdict"]].rename(columns={
            "count": "questions", "error_rate": "error rate where found (%)", "low": "95% CI low", "high": "95% CI high",
            "held_out_error_rate": "error rate held out (%)"})
        body.append(f"<h3>{side.capitalize()} questions</h3><p>{html.escape(str(tree_finding(tree)))}</p>")
        body.append(_wide(_table(leaves.set_index("rule"), 1)))
        body.append(_png(lambda f, tree=tree: plot_error_tree(tree, ax=f.add_subplot()), (11, 0.75 * len(leaves) + 1.6)))
    body.append("<h3>The intersections holding the most errors</h3><p>Every pair of "
                f"{', '.join(INTERSECTION_SLICES)}; cells of at least {MIN_INTERVAL_COUNT} questions.</p>")
    body.append(_wide(_table(_top_intersections(table, n_boot, seed), 1)))
    audit = gold_audit(run)
    body.append("<h3>Is the gold in doubt?</h3><p>How far the annotators' gold answers agree, the score against the "
                "majority gold beside the official one (any gold), and the questions worth a second look.</p>")
    body.append(_table(audit.summary, 1))
    return body


def _threshold_section(run, table) -> list:
    from ..core.metrics import CARD_FIGURES
    from ..views.plots import plot_official_curves, plot_threshold_curve

    summary = threshold_summary(run)  # "current" is the run's own threshold
    curve = threshold_curve(table)
    settings = run.info.get("settings", {})
    card = (" (this model's card reports its figures at it)"
            if (settings.get("model_given") or settings.get("model")) in CARD_FIGURES else "")
    return [f"<h2 id='thresholds'>Thresholds</h2><p>This run answered at null-odds threshold {run.threshold:g}. "
            f"The Hugging Face evaluation uses threshold 0.0 when it is given no no-answer probabilities{card}. "
            "Below, the official search over this run's no-answer probabilities.</p>",
            _table(summary.set_index(["metric", "threshold"]).rename(columns={
                "null_odds_threshold": "null-odds threshold", "overall": "overall %", "HasAns": "answerable %",
                "NoAns": "unanswerable %"}), 3),
            _png(lambda f: plot_threshold_curve(curve, summary=summary, ax=f.add_subplot())),
            _png(lambda f: plot_official_curves(table, axes=f.subplots(1, 2)), (11, 3.8))]


def _example_section(run, table, per_outcome: int) -> list:
    body = ["<h2 id='examples'>Examples</h2><p>The most confident questions of each outcome (largest |null odds|).</p>"]
    nbest = run.nbest
    for outcome in OUTCOMES:
        picked = table[table["outcome"] == outcome]
        if picked.empty:
            continue
        picked = picked.iloc[picked["null_odds"].abs().to_numpy().argsort()[::-1][:per_outcome]]
        body.append(f"<h3>{outcome} ({int((table['outcome'] == outcome).sum())})</h3>")
        body.extend(example_html(row, nbest.get(row["id"])) for _, row in picked.iterrows())
    return body


def compression_section(result) -> list:
    """The compression lab (:class:`xdanalysis.compress.Compression`) as a report section: the
    computed verdict, the table with the 95% intervals of each difference to float32 inside the
    cells, the frontiers, the threshold shifts and every variant's outcome transitions."""
    from ..views.compare import plot_transitions
    from ..views.compress import compression_display, plot_frontier, plot_threshold_shift

    table = result.table
    body = [f"<h2 id='compression'>{COMPRESSION_SECTION}</h2>",
            f"<p>{len(table)} variants of one model on the same {int(table['questions'].iloc[0])} held-out questions; "
            "every difference is to float32, with its paired-bootstrap 95% interval.</p>",
            "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in result.verdict()) + "</ul>",
            _wide(_table(compression_display(table))),
            _png(lambda fig: plot_frontier(table, against="speed", axes=fig.subplots(1, 2)), size=(11, 4.2)),
            _png(lambda fig: plot_frontier(table, against="size", axes=fig.subplots(1, 2)), size=(11, 4.2)),
            _png(lambda fig: plot_threshold_shift(table, ax=fig.gca()), size=(8, 0.6 + 0.5 * len(table)))]
    for name, comparison in list(result.comparisons.items())[1:]:
        body.append(f"<h3>float32 → {html.escape(name)}</h3>")
        body.append(_png(lambda fig, c=comparison: plot_transitions(c, ax=fig.gca()), size=(6.5, 4)))
    return body


def write_compression_report(result, out=None) -> Path:
    """Write the compression lab's page (default ``<lab>/report.html``) and return its path."""
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>xdanalysis compression lab</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(compression_section(result))}</body></html>")
    out = report_target(out or Path(result.path) / "report.html")
    write_text(out, page)
    return out
