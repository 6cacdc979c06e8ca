"""Sentences computed from numbers. Each finding returns its facts and the sentence they make; the
conditions that decide the words ("no difference", "within its share", "no single site") are decided
here, by the named thresholds below, and tested, so a notebook or the report only shows them.

>>> str(threshold_gain_finding({"best_f1": 52.0, "default_f1": 50.0, "gain": 0.4, "gain_low": -0.3,
...                             "gain_high": 1.1}))  # doctest: +NORMALIZE_WHITESPACE
'Tuning the null threshold: the official search claims +2.0 F1; cross-fitted, the honest gain is +0.4
[-0.3, +1.1]: no reliable gain (the interval includes 0).'
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ['ABSTAINING_WITHIN', 'ANSWERS_FEW', 'CLEARLY', 'DEGENERATE_SHARE', 'ONE_SITE', 'SAME_WITHIN', 'Finding',
           'as_markdown', 'baseline_finding', 'cause_finding', 'cka_finding', 'collapse_finding',
           'concentration_finding', 'cure_finding', 'deletion_finding', 'difference_words', 'flips_finding',
           'formed_finding', 'gold_finding', 'gradient_scale_finding', 'head_difference_finding',
           'head_to_head_finding', 'lens_finding', 'patching_finding', 'plausibility_finding',
           'position_or_order_finding', 'ranking_finding', 'selective_finding', 'swap_finding',
           'threshold_gain_finding', 'tree_finding']


# Two consistency rates (%) closer than this are "about the same" (probes on a few dozen questions each).
SAME_WITHIN = 5.0
# A patched site "carries" the decision when even the low end of its interval restores more than this share.
ONE_SITE = 0.5
# A student within this many F1 points of always abstaining has collapsed to abstaining (whatever it answers).
ABSTAINING_WITHIN = 1.0
# A student answering fewer than this share (%) of the held-out questions barely answers.
ANSWERS_FEW = 5.0
# Answer rates (%) further apart than this make two layers' F1 a comparison of different behaviours.
CLEARLY = 10.0


@dataclass(frozen=True)
class Finding:
    """A sentence and the numbers it was computed from."""

    facts: dict = field(repr=False)
    sentence: str

    def __str__(self) -> str:
        return self.sentence


def as_markdown(findings) -> str:
    """The findings as a Markdown list (those that are None, for want of data, left out)."""
    return "\n".join(f"* {finding.sentence}" for finding in findings if finding is not None)


def difference_words(difference: float, low: float, high: float, *, better: str = "better",
                     worse: str = "worse") -> str:
    """What a difference with its interval says: ``better``/``worse`` only when the interval excludes 0.

    >>> difference_words(1.2, 0.3, 2.0), difference_words(-0.5, -1.4, 0.6)
    ('better', 'no difference (the interval includes 0)')
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no interval (too few questions)"
    if low > 0:
        return better
    if high < 0:
        return worse
    return "no difference (the interval includes 0)"


# Robustness (notebook 06) --------------------------------------------------------------------------------

def deletion_finding(summary: pd.DataFrame, failures: pd.DataFrame) -> Finding | None:
    """What deleting the answer's sentence shows (``probe_summary`` and ``probe_failures`` rows): the
    abstentions it caused among the questions the model answered before, apart from those it already
    abstained on."""
    if "remove_answer_sentence" not in set(summary.loc[summary["n"] > 0, "probe"]):
        return None
    r = summary.set_index("probe").loc["remove_answer_sentence"]
    f = failures.set_index("probe").loc["remove_answer_sentence"]
    answered, newly = int(f["answered before"]), int(f["abstained after, of those answered before"])
    facts = {"n": int(f["n"]), "abstained_after": int(f["abstained after"]), "abstained_before": int(f["abstained before"]),
             "answered_before": answered, "newly_abstained": newly, "consistency": float(r["consistency"]),
             "low": float(r["low"]), "high": float(r["high"])}
    said = (f"Of the {answered} it answered before, it now abstains on {newly} ({100 * newly / answered:.0f}%): that "
            "is the figure that says whether it reads the context." if answered else
            "It had answered none of them before, so this probe cannot say whether it reads the context.")
    return Finding(facts, f"With the sentence holding the answer **deleted**, the model abstains on "
                          f"{facts['abstained_after']} of {facts['n']} questions ({facts['consistency']:.0f}% "
                          f"[{facts['low']:.0f}–{facts['high']:.0f}]), but it had already abstained on "
                          f"{facts['abstained_before']} of them before the deletion. {said}")


def position_or_order_finding(summary: pd.DataFrame, *, same_within: float = SAME_WITHIN) -> Finding | None:
    """Moving the answer's sentence against shuffling the other sentences, on the questions the model got
    right: which costs more, or about the same when the two are within ``same_within`` points."""
    rows = summary[summary["n"] > 0].set_index("probe")
    moves = [p for p in ("move_answer_sentence_start", "move_answer_sentence_end") if p in rows.index]
    if not moves or "shuffle_sentences" not in rows.index:
        return None
    moved = min(float(rows.loc[p, "consistency_if_correct"]) for p in moves)
    shuffled = float(rows.loc["shuffle_sentences", "consistency_if_correct"])
    if not (np.isfinite(moved) and np.isfinite(shuffled)):
        return None
    verdict = ("**Position matters more than order**" if moved < shuffled - same_within else
               "**Order matters more than position**" if shuffled < moved - same_within else
               f"**Position and order cost about the same** (within {same_within:g} points)")
    return Finding({"moved": moved, "shuffled": shuffled, "same_within": same_within},
                   f"{verdict}: of the answers it got right, shuffling the *other* sentences keeps {shuffled:.0f}%, "
                   f"moving the answer's own sentence to the start or the end keeps {moved:.0f}% (the worse of the "
                   "two). Confounded: a moved sentence can also lose what its pronouns refer to; look at the examples.")


_SWAP_WORDS = {"abstained": "abstains rather than answering.", "another answer": "answers something else.",
               "kept the old answer": "answers from what it expects, not from the text."}


def swap_finding(summary: pd.DataFrame, failures: pd.DataFrame) -> Finding | None:
    """What swapping the answer for another of its kind shows: how often the model finds the new one, and
    what its misses mostly are (none: said so)."""
    if "swap_answer" not in set(summary.loc[summary["n"] > 0, "probe"]):
        return None
    r = summary.set_index("probe").loc["swap_answer"]
    f = failures.set_index("probe").loc["swap_answer"]
    kinds = {kind: int(f[kind]) for kind in _SWAP_WORDS}
    facts = {"consistency": float(r["consistency"]), "n": int(f["n"]), "missed": int(f["missed"]), **kinds,
             "consistency_if_correct": float(r["consistency_if_correct"])}
    if facts["missed"] == 0:
        mostly = "it missed none."
    else:
        commonest = max(kinds, key=kinds.get)
        tied = [k for k, v in kinds.items() if v == kinds[commonest]]
        mostly = ("its misses are split evenly between " + " and ".join(tied) + "." if len(tied) > 1 else
                  "when the text contradicts what it expects, it mostly " + _SWAP_WORDS[commonest])
    return Finding(facts, f"With its answer **swapped** for another of the same kind, it finds the new one in "
                          f"{facts['consistency']:.0f}% of {facts['n']} cases ({facts['consistency_if_correct']:.0f}% "
                          f"where it had been right). Of its {facts['missed']} misses, {kinds['abstained']} are "
                          f"abstentions, {kinds['another answer']} another answer and {kinds['kept the old answer']} "
                          f"the old answer the rewrite removed: {mostly}")


def selective_finding(curve: pd.DataFrame) -> Finding | None:
    """F1 among the answered when the model answers only its most confident half, against answering all
    (a :func:`~xdanalysis.analysis.selective.risk_coverage` curve)."""
    from ..analysis.selective import curve_aurc

    if len(curve) < 2:
        return None
    half, everything = 100 * (1 - curve["risk"].iloc[len(curve) // 2 - 1]), 100 * (1 - curve["risk"].iloc[-1])
    facts = {"half_f1": half, "all_f1": everything, "aurc": 100 * curve_aurc(curve), "questions": len(curve)}
    gain = "higher" if half > everything else "no higher: its confidence does not rank its answers"
    return Finding(facts, f"Answering only its most confident half, F1 among the answered is {half:.0f} against "
                          f"{everything:.0f} when it answers everything ({gain}; AURC {facts['aurc']:.1f}, "
                          f"{len(curve)} questions).")


def threshold_gain_finding(audit: dict) -> Finding:
    """The official threshold search's claimed gain against the cross-fitted one, with its interval
    (:func:`~xdanalysis.analysis.thresholds.cross_fitted_threshold`)."""
    claimed = audit["best_f1"] - audit["default_f1"]
    words = difference_words(audit["gain"], audit["gain_low"], audit["gain_high"], better="a real gain",
                             worse="a loss")
    if words.startswith("no difference"):
        words = "no reliable gain (the interval includes 0)"
    return Finding({**{k: audit[k] for k in ("gain", "gain_low", "gain_high")}, "claimed": claimed},
                   f"Tuning the null threshold: the official search claims {claimed:+.1f} F1; cross-fitted, the "
                   f"honest gain is {audit['gain']:+.1f} [{audit['gain_low']:+.1f}, {audit['gain_high']:+.1f}]: "
                   f"{words}.")


# Where errors concentrate (notebook 02, the report) -------------------------------------------------------

def tree_finding(tree) -> Finding:
    """The error tree in a sentence: the worst rule that held out of sample (or that none did), and the leaf
    with the most errors, its count said as a count when its interval would be degenerate."""
    leaves = tree.leaves
    side = getattr(tree, "side", "all")
    errors = "all errors" if side == "all" else f"the {side} questions' errors"  # a side's tree: its side's errors
    held = leaves[leaves["verdict"] == "held"]
    worst = held.sort_values("held_out_error_rate", ascending=False).iloc[0] if len(held) else None
    biggest = leaves.sort_values("share of errors (%)", ascending=False).iloc[0]
    first = (f"The worst rule that held out of sample — *{worst['rule']}* — has {worst['held_out_error_rate']:.0f}% "
             f"errors on the half it never saw ({worst['count']} questions, {worst['share of errors (%)']:.0f}% of "
             f"{errors})." if worst is not None else "No rule of the tree held out of sample: the errors do not "
             "concentrate along these features more than chance would make them.")
    where = {"all": "The run's", "answerable": "On the answerable questions, the", "unanswerable":
             "On the unanswerable questions, the"}[side]
    return Finding({"base_rate": tree.base_rate, "worst": None if worst is None else worst["rule"],
                    "biggest": biggest["rule"]},
                   f"{where} error rate is {tree.base_rate:.1f}%. {first} The leaf holding the most errors is "
                   f"*{biggest['rule']}* ({biggest['share of errors (%)']:.0f}% of them, verdict: {biggest['verdict']}).")


def concentration_finding(cells: pd.DataFrame) -> Finding | None:
    """The cell holding the most errors (:func:`~xdanalysis.analysis.slices.top_intersections`), and whether
    it holds them out of proportion: only when its share of errors' interval lies above its share of questions."""
    if cells.empty:
        return None
    top = cells.iloc[0]
    said = (f"more than its share: concentrated (×{top['ratio']:.2f})" if top["concentrated"] else
            f"no concentration: the interval includes its {top['share of questions (%)']:.0f}% share of questions "
            f"(×{top['ratio']:.2f})")
    return Finding(top.to_dict(), f"The cell holding the most errors, **{top['cell']}**, holds "
                                  f"{top['share of errors (%)']:.0f}% [{top['share of errors low (%)']:.0f}–"
                                  f"{top['share of errors high (%)']:.0f}] of the errors for "
                                  f"{top['share of questions (%)']:.0f}% of the questions ({int(top['questions'])}): "
                                  f"{said}.")


def gold_finding(audit) -> Finding:
    """What the gold audit says (:func:`~xdanalysis.analysis.gold.gold_audit`): F1 against the majority gold
    beside the official one, answers only a minority annotator gave, errors within the annotators' own
    disagreement, and confident answers to unanswerable questions with their plausible answer (when the data
    has plausible answers)."""
    summary = audit.summary["value"]
    facts = summary.to_dict()
    trap, within = summary.iloc[-1], int(summary["errors within the annotators' disagreement"])
    traps = (f"{int(trap)} unanswerable questions were answered with their plausible answer at high confidence (worth a "
             "look: a disputed label?)." if trap == trap else "whether unanswerable questions were answered with "
             "their plausible answer is not known: this data has no plausible answers.")
    return Finding(facts, f"Against the majority gold instead of any gold, F1 goes from "
                          f"{summary['F1 against any gold (official, %)']:.1f} to "
                          f"{summary['F1 against the majority gold (%)']:.1f} on the answerable questions; "
                          f"{int(summary['answers matching a minority gold only'])} answers match only a minority "
                          f"annotator, {within} errors are no further "
                          f"from the golds than the annotators are from each other, and {traps}")


# Inside the model (notebook 09) ----------------------------------------------------------------------------

def lens_finding(per_layer: pd.DataFrame, *, metric: str = "HasAns_F1", clearly: float = CLEARLY) -> Finding:
    """Where a lens's answerable F1 peaks, with the share each layer answers beside it: a peak at a layer
    that answers far more questions than the last (by more than ``clearly`` points) is bought by answering,
    not by reading better, and the sentence says so."""
    best = per_layer.loc[per_layer[metric].idxmax()]
    final = per_layer.iloc[-1]
    facts = {"peak_layer": int(best["layer"]), "peak": float(best[metric]), "peak_answered": float(best["answered"]),
             "last_layer": int(final["layer"]), "last": float(final[metric]), "last_answered": float(final["answered"])}
    if facts["peak_layer"] == facts["last_layer"]:
        meaning = "at the last layer: the last layer is the best reader of the answerable questions."
    elif facts["peak_answered"] > facts["last_answered"] + clearly:
        meaning = (f"not a better reader: layer {facts['peak_layer']} answers {facts['peak_answered']:.0f}% of the "
                   f"questions against the last layer's {facts['last_answered']:.0f}%, and answering more raises "
                   "answerable F1 by itself; the later layers learn to abstain.")
    else:
        meaning = (f"at a similar answer rate ({facts['peak_answered']:.0f}% against {facts['last_answered']:.0f}%): "
                   "the later layers lose some of what that layer had.")
    return Finding(facts, f"Read through the model's own head, answerable F1 peaks at layer {facts['peak_layer']} "
                          f"({facts['peak']:.1f}); the last layer gives {facts['last']:.1f}. The peak is {meaning}")


def patching_finding(summary: pd.DataFrame, *, one_site: float = ONE_SITE) -> Finding | None:
    """Whether one site carries the abstention (:func:`~xdanalysis.interpret.patching.patching_summary`):
    only when the best single site's interval lies above ``one_site`` and above the runner-up's."""
    sites = summary[summary["site"] != "all"].sort_values("restored", ascending=False)
    if sites.empty:
        return None
    best = sites.iloc[0]
    runner = sites.iloc[1] if len(sites) > 1 else None
    everywhere = summary.loc[summary["site"] == "all", "restored"]
    apart = runner is None or best["restored_low"] > runner["restored_high"]
    carried = bool(best["restored_low"] > one_site and apart)
    facts = {"site": best["site"], "layer": int(best["layer"]), "restored": float(best["restored"]),
             "low": float(best["restored_low"]), "high": float(best["restored_high"]), "pairs": int(best["pairs"]),
             "one_site": carried}
    head = ("**The decision to abstain passes through one site**" if carried else
            "**No single site carries the decision to abstain**")
    best_said = (f"the best single site, **{best['site']}** at layer {int(best['layer'])}, restores "
                 f"{best['restored']:.2f} [{best['restored_low']:.2f}, {best['restored_high']:.2f}] of the null-odds "
                 f"gap ({int(best['pairs'])} pairs)")
    if runner is not None and not apart:
        best_said += (f", an interval that overlaps the runner-up's ({runner['site']} at layer {int(runner['layer'])}, "
                      f"{runner['restored']:.2f} [{runner['restored_low']:.2f}, {runner['restored_high']:.2f}])")
    everywhere_said = (f"; patching every shared position restores {everywhere.min():.2f} to {everywhere.max():.2f} "
                       "of it, whatever the layer" if len(everywhere) else "")
    return Finding(facts, f"{head}: {best_said}{everywhere_said}.")


def cka_finding(similarity, *, cut_from=None) -> Finding:
    """For each student layer, the teacher layer most like it (linear CKA of their outputs), in the 0-based
    layer ids ``cut_layers`` uses (the matrix's row/column k is hidden state k, the output of layer k − 1;
    0 is the embeddings); with ``cut_from`` (the teacher layers the student was cut from), how many match."""
    matrix = getattr(similarity, "matrix", similarity)
    match = matrix.iloc[1:, 1:].idxmax(axis=0)
    pairs = [(int(s) - 1, int(t) - 1) for s, t in match.items()]
    said = ", ".join(f"student layer {s} ≈ teacher layer {t}" for s, t in pairs)
    facts = {"pairs": pairs}
    if cut_from is not None:
        cut = [int(i) for i in cut_from]
        same = sum(1 for s, t in pairs if s < len(cut) and cut[s] == t)
        facts.update(cut_from=cut, matching=same)
        said += (f" (layer ids from 0, as the student was cut: from teacher layers {cut}; {same} of {len(pairs)} "
                 "still resemble the layer they were cut from most)")
    return Finding(facts, f"**Student layers**: {said}.")


def ranking_finding(metrics: pd.DataFrame, *, chosen, default) -> Finding:
    """The evidence-ranked student against the default one (a :func:`~xdanalysis.analysis.compare.compare`
    of default → ranked): better, worse or no difference, overall and on the answerable questions."""
    if list(chosen) == list(default):
        return Finding({"chosen": list(chosen), "default": list(default)},
                       f"**Layers from evidence**: the ranking picks the lab's default {list(default)} itself.")
    rows = metrics.set_index(["group", "metric"])
    parts, facts = [], {"chosen": list(chosen), "default": list(default)}
    for group, name in (("overall", "overall F1"), ("HasAns", "answerable F1")):
        row = rows.loc[(group, "F1")]
        words = difference_words(row["difference"], row["low"], row["high"])
        facts[group] = {"difference": float(row["difference"]), "low": float(row["low"]), "high": float(row["high"]),
                        "verdict": words}
        parts.append(f"{name} {row['difference']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]: {words}")
    overall, answerable = facts["overall"]["verdict"], facts["HasAns"]["verdict"]
    decided = {overall, answerable} & {"better", "worse"}
    head = ("traded one score for the other against" if len(decided) == 2 else
            f"did {overall} than" if overall == answerable and decided else
            f"did {overall} overall (answerable F1: no difference) than" if overall in decided else
            f"did {answerable} on answerable questions, with no overall difference, than" if decided else
            "is not distinguishable from")
    return Finding(facts, f"**Layers from evidence**: the student from the ranked teacher layers {list(chosen)} "
                          f"{head} the default {list(default)} at the same budget — " + "; ".join(parts)
                   + " (ranked − default, paired bootstrap).")


# The distillation lab (notebook 05) ---------------------------------------------------------------------

def _collapsed(row, always: float) -> bool:
    return row["F1"] - always < ABSTAINING_WITHIN or row["answered (%)"] < ANSWERS_FEW


def collapse_finding(at_zero: pd.DataFrame, *, always: float, share_on_cls: float) -> Finding:
    """The lab's students at the teacher's threshold (``lab_table`` rows, by student): how much they answer,
    which have collapsed to abstaining (within ``ABSTAINING_WITHIN`` F1 of always abstaining, or answering under
    ``ANSWERS_FEW``%), and what they know when forced to answer."""
    collapsed = [n for n, row in at_zero.iterrows() if _collapsed(row, always)]
    answered = ", ".join(f"{row['answered (%)']:.0f}% ({n})" for n, row in at_zero.iterrows())
    forced = ", ".join(f"{row['forced HasAns F1']:.1f} ({n})" for n, row in at_zero.iterrows())
    head = ("**The collapse.**" if collapsed else "**No collapse here.**")
    said = (f"{', '.join(collapsed)} {'has' if len(collapsed) == 1 else 'have'} collapsed to abstaining (within "
            f"{ABSTAINING_WITHIN:g} F1 point of always abstaining, or answering under {ANSWERS_FEW:g}%)"
            if collapsed else "none is within a point of always abstaining")
    return Finding({"collapsed": collapsed, "always": always, "share_on_cls": share_on_cls},
                   f"{head} At the teacher's threshold the students answer {answered} of the held-out questions; "
                   f"always abstaining scores F1 {always:.1f}, and {said}. Forced to answer, their answerable F1 "
                   f"is {forced} against {at_zero['HasAns F1'].max():.1f} at most as they decide. "
                   f"{100 * share_on_cls:.0f}% of the training windows have their target on [CLS]: the prior a "
                   "small student learns first.")


def cure_finding(at_zero: pd.DataFrame, refit: pd.DataFrame, *, always: float, forced: dict,
                 transfer: int) -> Finding:
    """What the lab's two levers did: the forced-to-answer gap between the soft-target and the hard-label
    student (``forced``: :func:`~xdanalysis.analysis.compare.forced_difference`, hard → soft), said as confounded
    (the two differ in the loss *and* in the transfer data only the soft one can use), and each student at its
    re-fitted threshold, "still collapsed" where it is."""
    still = [n for n, row in refit.iterrows() if _collapsed(row, always)]
    lifted = len(refit) - len(still)
    head = ("**The two levers did not lift the collapse: every student is still collapsed.**" if not lifted else
            f"**The two levers lifted the collapse for {lifted} of {len(refit)} students.**" if still else
            "**The two levers lifted the collapse: no student is collapsed any more.**")
    gap = difference_words(forced["difference"], forced["low"], forced["high"], better="soft targets ahead",
                           worse="hard labels ahead")
    lines = [f"{head} Forced to answer, soft targets − hard labels, answerable F1: {forced['difference']:+.1f} "
             f"[{forced['low']:+.1f}, {forced['high']:+.1f}] over {forced['questions']} questions: {gap}. Confounded: "
             f"the two differ in the loss *and* in the data (the soft-target student also learnt from {transfer:,} "
             "questions only the teacher labelled, which a hard-label student cannot use); the README's no-transfer "
             "ablation separates the two."]
    for name, after in refit.iterrows():
        before = at_zero.loc[name]
        state = " — still collapsed" if name in still else ""
        lines.append(f"- {name}: threshold {after['null-odds threshold']:+.2f}, answers {after['answered (%)']:.0f}% "
                     f"(from {before['answered (%)']:.0f}%); answerable F1 {before['HasAns F1']:.1f} → "
                     f"{after['HasAns F1']:.1f}, overall {before['F1']:.1f} → {after['F1']:.1f} (always abstaining: "
                     f"{always:.1f}){state}")
    return Finding({"still_collapsed": still, "forced": forced}, "\n".join(lines))


def head_to_head_finding(comparison, *, always_a: float | None = None, always_b: float | None = None) -> Finding:
    """Two students compared (a :class:`~xdanalysis.analysis.compare.Comparison`, B − A): answerable and
    overall F1 with their intervals, and, when both sit within ``ABSTAINING_WITHIN`` of always abstaining, that
    the comparison says little about how they were trained."""
    a, b = comparison.labels
    rows = comparison.metrics.set_index(["group", "metric"])
    parts, facts = [], {}
    for group, name in (("HasAns", "answerable F1"), ("overall", "overall F1")):
        row = rows.loc[(group, "F1")]
        words = difference_words(row["difference"], row["low"], row["high"], better=f"{b} did better",
                                 worse=f"{a} did better")
        facts[group] = {"difference": float(row["difference"]), "low": float(row["low"]), "high": float(row["high"]),
                        "verdict": words}
        parts.append(f"{name} {row['difference']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]: {words}")
    overall = rows.loc[("overall", "F1")]
    near = [label for label, score in ((a, overall[a]), (b, overall[b]))
            if "always abstaining" in overall and score - overall["always abstaining"] < ABSTAINING_WITHIN]
    caveat = (f" Both are within {ABSTAINING_WITHIN:g} F1 point of always abstaining: the comparison is between two "
              "collapsed students and says little about how they were trained." if len(near) == 2 else "")
    facts["collapsed"] = near
    return Finding(facts, f"**{b} − {a}**: " + "; ".join(parts) + "." + caveat)


def gradient_scale_finding(scale: pd.DataFrame) -> Finding:
    """How the soft-target gradient's norm changes from the second temperature to the last, without and with the
    T² factor, against the 1/T² that the factor makes up for (``soft_gradient_scale``)."""
    low, high = scale.iloc[1], scale.iloc[-1]
    predicted = (high["temperature"] / low["temperature"]) ** 2
    without, with_t2 = low["without T²"] / high["without T²"], low["with T²"] / high["with T²"]
    beyond = without / predicted
    said = ("about as 1/T² predicts" if 0.5 <= beyond <= 2 else
            f"{beyond:.1f}× more than 1/T² predicts: the flatter targets shrink it further" if beyond > 2 else
            f"{1 / beyond:.1f}× less than 1/T² predicts")
    return Finding({"predicted": predicted, "without": without, "with": with_t2},
                   f"From T = {low['temperature']:g} to T = {high['temperature']:g} the gradient's norm "
                   + (f"falls {without:.0f}×" if without >= 1 else f"rises {1 / without:.1f}×")
                   + f" without the factor, {said} (1/T² alone: {predicted:.0f}×); with T² it changes "
                   f"{with_t2:.1f}×. T² makes up for the 1/T² scaling, not for the flatter targets themselves.")



# Why unanswerable (notebook 10) ------------------------------------------------------------------------

def cause_finding(summary: pd.DataFrame) -> Finding | None:
    """Which annotated cause the model falls for most (lowest correct abstention) against the one it
    falls for least, and whether their Wilson intervals keep them apart (``cause_summary`` rows; the
    ``"not annotated"`` row is left out)."""
    rows = summary[summary["cause"] != "not annotated"].sort_values("correct abstention (%)", kind="stable")
    if len(rows) < 2:
        return None
    worst, best = rows.iloc[0], rows.iloc[-1]
    apart = worst["high (%)"] < best["low (%)"]
    facts = {"worst": worst["cause"], "best": best["cause"], "apart": bool(apart)}

    def said(row):
        return (f"{row['correct abstention (%)']:.0f}% [{row['low (%)']:.0f}, {row['high (%)']:.0f}] "
                f"({row['false answers']} of {row['questions']} answered)")
    verdict = ("the two intervals do not overlap" if apart else
               "their intervals overlap: no cause stands apart from another on these questions")
    return Finding(facts, f"It falls most for **{worst['cause']}** questions: correct abstention {said(worst)}, "
                          f"against {said(best)} for **{best['cause']}**; {verdict}.")


def plausibility_finding(compared: pd.DataFrame, *, measure: str = "auprc") -> Finding | None:
    """Each explanation method against random word scores on the same questions (``against_random`` rows):
    the paired difference with its interval, and whether it points where humans point more than chance."""
    if compared.empty:
        return None
    parts, facts = [], {}
    for row in compared.to_dict("records"):
        difference, low, high = row["difference (points)"], row["low"], row["high"]
        words = difference_words(difference, low, high, better="above random", worse="below random")
        facts[row["method"]] = words
        parts.append(f"{row['method']} {row[f'{measure} (%)']:.1f}% vs random {row['random (%)']:.1f}% "
                     f"({difference:+.1f} [{low:+.1f}, {high:+.1f}], n={row['questions']}): {words}")
    name = {"auprc": "AUPRC", "token_f1": "token F1", "iou_f1": "IOU F1"}.get(measure, measure)
    return Finding(facts, f"Against the human rationales ({name}, paired on the same questions): " + "; ".join(parts)
                   + ".")


def flips_finding(flips: pd.DataFrame) -> Finding | None:
    """The rationale-deletion probe over every rewritten question (``deletion_flips``' ``"all"`` row): how
    often deleting the marked words, and as many random words, turned an abstention into an answer."""
    if "all" not in set(flips["cause"]):
        return None
    row = flips.set_index("cause").loc["all"]
    if not row["abstained before"]:
        return Finding({"verdict": "nothing to flip"}, "The model abstained on none of the questions the deletion "
                                                       "probe rewrote: there was no abstention to turn into an answer.")
    words = difference_words(row["difference (points)"], row["difference low"], row["difference high"],
                             better="the marked words move it more than random words do",
                             worse="random words move it more than the marked words do")
    return Finding({"verdict": words},
                   f"Of {int(row['abstained before'])} abstentions, deleting the words humans marked turned "
                   f"{int(row['rationale deleted: answers'])} ({row['rationale deleted (%)']:.1f}%) into answers, "
                   f"deleting as many random words {int(row['random words deleted: answers'])} "
                   f"({row['random words deleted (%)']:.1f}%): {row['difference (points)']:+.1f} points "
                   f"[{row['difference low']:+.1f}, {row['difference high']:+.1f}], {words}.")


# Attention (notebook 03) --------------------------------------------------------------------------------

def head_difference_finding(differences: pd.DataFrame, *, statistic: str, labels=("A", "B"),
                            level: float = 0.95) -> Finding | None:
    """How many heads' intervals of A − B exclude 0 for ``statistic`` (``head_differences`` rows), against
    what chance alone gives when no head differs (each interval misses 0 with probability 1 − ``level``): a
    difference is claimed only when so many heads would be rarer than 1 in 20 by chance."""
    from math import comb

    part = differences[differences["statistic"] == statistic]
    if part.empty:
        return None
    n, k, p = len(part), int(part["excludes_zero"].sum()), 1 - level
    tail = sum(comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))  # P(at least k by chance)
    strongest = part.loc[part["difference"].abs().idxmax()]
    chance = "P < 0.001" if tail < 0.001 else f"P = {tail:.3f}"  # an exact tail: never "P = 0.000"
    verdict = (f"more than chance gives ({chance} if no head differed): heads differ, e.g. layer "
               f"{int(strongest['layer'])} head {int(strongest['head'])}, {strongest['difference']:+.3f} "
               f"[{strongest['low']:+.3f}, {strongest['high']:+.3f}]" if tail < 0.05 else
               f"no more than chance gives when no head differs (P = {tail:.2f}): no evidence that {labels[0]} and "
               f"{labels[1]} attend differently in {statistic}")
    return Finding({"heads": n, "excluding_zero": k, "chance_tail": tail},
                   f"**{statistic}**: {k} of {n} heads' {100 * level:.0f}% intervals exclude 0, about "
                   f"{p * n:.1f} expected by chance; {verdict}.")


# Attribution (notebook 07) ------------------------------------------------------------------------------

def baseline_finding(attr, *, threshold: float) -> Finding | None:
    """What an attribution of the null odds explains, given what its baseline decides (an
    :class:`~xdanalysis.interpret.attribution.Attribution`): when the baseline already falls on the same side
    of ``threshold`` as the input, the attributions explain only the distance between two inputs that decide
    alike, not the decision."""
    if attr.target != "null_odds":
        return None
    base, value = float(attr.baseline_value), float(attr.target_value)
    decides = {True: "abstains", False: "answers"}
    same = (base > threshold) == (value > threshold)
    facts = {"baseline": base, "input": value, "same_decision": same}
    if same:
        return Finding(facts, f"The [PAD] baseline {decides[base > threshold]} too (null odds {base:+.1f} against the "
                              f"threshold {threshold:g}; the input {value:+.1f}): the attributions sum to "
                              f"{value - base:+.1f}, the distance between two inputs that decide alike, not why the "
                              f"model {decides[value > threshold]}.")
    return Finding(facts, f"The [PAD] baseline {decides[base > threshold]} (null odds {base:+.1f}) and the input "
                          f"{decides[value > threshold]} ({value:+.1f}, threshold {threshold:g}): the attributions, "
                          f"summing to {value - base:+.1f}, explain the move across the threshold.")


# Inside the model (notebook 09) -------------------------------------------------------------------------

# A lens layer that answers at least this share (%) of the questions (or abstains on at least this share)
# decides nothing: every question the model answers (or abstains on) counts as "decided" there by default.
DEGENERATE_SHARE = 99.0


def formed_finding(per_layer: pd.DataFrame, formed: pd.DataFrame, *, degenerate: float = DEGENERATE_SHARE) -> Finding:
    """What "the decision forms at layer k" can mean: the layers where the lens answers (or abstains on)
    nearly every question (``degenerate``, %) decide nothing, so a question "decided" at one of them may only
    share the lens's default; counted apart (``per_layer`` and ``formed`` of a ``LayerLens``)."""
    answered = per_layer.set_index("layer")["answered"]
    flat = [int(layer) for layer, rate in answered.items() if rate >= degenerate or rate <= 100 - degenerate]
    last = int(answered.index.max())
    flat = [layer for layer in flat if layer != last]  # the last layer is the model itself
    if not flat:
        return Finding({"degenerate_layers": []},
                       f"Every lens layer answers between {100 - degenerate:g}% and {degenerate:g}% of the questions: "
                       "the layer where each decision forms is read as counted.")
    vacuous = formed[formed["decision_layer"].isin(flat)]
    answered_final = int((vacuous["final_answer"] != "").sum())
    shown = ", ".join(map(str, flat))
    low, high = (f"{round(answered.loc[flat].min(), 1):g}", f"{round(answered.loc[flat].max(), 1):g}")
    in_the_end = (f"all {answered_final} answered" if answered_final == len(vacuous) > 1
                  else f"{answered_final} of them answered")
    return Finding({"degenerate_layers": flat, "vacuous": len(vacuous)},
                   f"At layer(s) {shown} the lens answers {low if low == high else f'{low}–{high}'}% "
                   f"of the questions: it decides nothing there, so the {len(vacuous)} questions counted as decided "
                   f"at {'one of them' if len(flat) > 1 else 'it'} ({in_the_end} in the end) only "
                   "share the lens's default. Read the decision counts from the first layer the lens both answers "
                   "and abstains.")
