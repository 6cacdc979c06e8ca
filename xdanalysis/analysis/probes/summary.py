"""Probe consistency with bootstrap intervals, a text summary, and the examples behind it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.stats import N_BOOT
from ...core.common import check_choice
from ...runs.run import table_of
from .rewrites import PROBES, expectation_met

__all__ = ['FAILURE_KINDS', 'failure_kinds', 'probe_examples', 'probe_failures', 'probe_results', 'probe_summary',
           'probe_summary_text', 'probe_transitions']


def probe_summary(results, *, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per probe: what it expects, how many questions it probed (``n``) and skipped, the
    consistency rate (% of expectations met) with a bootstrap interval, and the same among the
    questions the model got right originally (``consistency_if_correct``, EM 1 or a correct
    abstention). ``results``: a :class:`~xdanalysis.labs.probes.ProbeRuns` (its record gives the skipped
    counts) or a results table. A plain frame; the outcome transitions per probe are :func:`probe_transitions`.

    Example::

        probe_summary(load_probes("runs/probes-demo"))
    """
    from ...core.stats import bootstrap_interval

    record = getattr(results, "record", {}).get("probes", {})
    results = table_of(results)
    rows = []
    for name in [n for n in PROBES if n in set(results["probe"]) or n in record]:
        part = results[results["probe"] == name]
        met = part["met"].to_numpy(dtype=float)
        low, high = bootstrap_interval(met, n_boot=n_boot, seed=seed, level=level)
        right = part["original_exact"].to_numpy() == 1
        skipped = record.get(name, {}).get("skipped")
        rows.append({"probe": name, "expect": "/".join(sorted(set(part["expect"]))) or "-", "n": len(part),
                     "skipped": sum(skipped.values()) if skipped is not None else np.nan,
                     "consistency": 100 * met.mean() if len(met) else np.nan,
                     "low": 100 * low, "high": 100 * high,
                     "n_correct": int(right.sum()),
                     "consistency_if_correct": 100 * met[right].mean() if right.any() else np.nan})
    return pd.DataFrame(rows, columns=["probe", "expect", "n", "skipped", "consistency", "low", "high",
                                       "n_correct", "consistency_if_correct"])


def probe_transitions(results) -> dict:
    """``{probe: original outcome x probed outcome counts}`` (:func:`xdanalysis.analysis.compare.transition_table`)
    for every probe in ``results``, in the probes' order."""
    results = table_of(results)
    from ..compare import transition_table

    return {name: transition_table(part["original_outcome"], part["probed_outcome"], ("original", "probed"))[0]
            for name in PROBES for part in [results[results["probe"] == name]] if len(part)}


# How a probed question can miss its expectation, in the order tables show them.
FAILURE_KINDS = ["abstained", "answered anyway", "kept the old answer", "another answer"]


def _failure_kind(row) -> str | None:
    from ...core.metrics import compute_exact

    if row.met:
        return None
    if row.probed_answer == "":
        return "abstained"
    if row.expect == "abstain":
        return "answered anyway"
    old = list(row.original_answer_texts) + [row.original_answer]
    if row.expect == "answer" and any(compute_exact(a, row.probed_answer) for a in old if a):
        return "kept the old answer"  # the answer the text no longer holds
    return "another answer"


def probe_failures(results) -> pd.DataFrame:
    """Per probe: how many questions missed the expectation, split by kind (``FAILURE_KINDS``:
    abstained, answered anyway where it should abstain, kept the old answer the rewrite removed,
    another answer), beside the base rates that say what the probe changed: how many the model
    already abstained on before the rewrite and how many after. Each question's own kind:
    :func:`failure_kinds`.

    Example::

        probe_failures(load_probes("runs/probes-demo"))
    """
    results = table_of(results)
    kinds = failure_kinds(results)
    rows = []
    for name in [n for n in PROBES if n in set(results["probe"])]:
        part = results[results["probe"] == name]
        mix = kinds[part["id"].to_numpy()].value_counts()
        before, after = part["original_answer"] == "", part["probed_answer"] == ""
        rows.append({"probe": name, "expect": "/".join(sorted(set(part["expect"]))), "n": len(part),
                     "missed": int((~part["met"].astype(bool)).sum()),
                     **{kind: int(mix.get(kind, 0)) for kind in FAILURE_KINDS},
                     "abstained before": int(before.sum()), "abstained after": int(after.sum()),
                     "abstained after, of those answered before": int((after & ~before).sum()),
                     "answered before": int((~before).sum())})
    return pd.DataFrame(rows)


def failure_kinds(results) -> pd.Series:
    """Each probed question's failure kind (``FAILURE_KINDS``; None when the expectation was met), by ``id``."""
    results = table_of(results)
    return pd.Series([_failure_kind(r) for r in results.itertuples()], index=results["id"].to_numpy(), dtype=object)


def probe_summary_text(summary: pd.DataFrame) -> str:
    """The probe summary as a fixed-width table for the terminal.

    >>> s = pd.DataFrame([{"probe": "question_typo", "expect": "same_answer", "n": 10, "skipped": 0,
    ...     "consistency": 90.0, "low": 70.0, "high": 100.0, "n_correct": 5, "consistency_if_correct": 80.0}])
    >>> print(probe_summary_text(s).splitlines()[1])
    question_typo                  same_answer            10        0    90.0 [ 70.0, 100.0]     80.0 (5)
    """
    lines = [f"{'probe':30s} {'expect':19s} {'n':>5s} {'skipped':>8s} {'met %':>7s} {'95% CI':>14s} "
             f"{'if correct %':>12s}"]
    for row in summary.itertuples(index=False):
        if not row.n:
            lines.append(f"{row.probe:30s} {'-':19s} {0:5d} {row.skipped:8.0f}  (nothing to probe)")
            continue
        lines.append(f"{row.probe:30s} {row.expect:19s} {row.n:5d} {row.skipped:8.0f} {row.consistency:7.1f} "
                     f"[{row.low:5.1f}, {row.high:5.1f}] {row.consistency_if_correct:8.1f} ({row.n_correct})")
    return "\n".join(lines)


def probe_examples(results, *, probe: str | None = None, met: bool | None = None,
                   original_outcome=None) -> pd.DataFrame:
    """The probed questions behind a number: one probe (or all), met or not (or both), from some
    original outcome(s); the probe's order, then the run's.

    Example::

        probe_examples(results, probe="remove_answer_sentence", met=False, original_outcome="correct")
    """
    results = table_of(results)
    from ..outcomes import OUTCOMES

    mask = pd.Series(True, index=results.index)
    if probe is not None:
        check_choice("probe", probe, list(PROBES))
        mask &= results["probe"] == probe
    if met is not None:
        mask &= results["met"] == bool(met)
    if original_outcome is not None:
        wanted = [original_outcome] if isinstance(original_outcome, str) else list(original_outcome)
        unknown = sorted(set(wanted) - set(OUTCOMES))
        if unknown:
            raise ValueError(f"unknown outcome(s) {unknown}; use {OUTCOMES}")
        mask &= results["original_outcome"].isin(wanted)
    return results[mask]


_RESULT_SIDES = ["question", "context", "answer_texts", "answer", "outcome", "exact", "f1", "null_odds"]


def probe_results(original, probed: dict) -> pd.DataFrame:
    """One row per probed question: the probe, its expectation, the original and the probed
    question, context, gold, answer, outcome, EM/F1 and null odds, and ``met``.

    ``original`` is the run (or run table) of the source questions; ``probed`` maps a probe's name
    to ``(probe_table, run)`` where ``probe_table`` is :func:`apply_probe`'s result and ``run``
    its run.
    """
    from ..outcomes import outcomes

    base = outcomes(table_of(original)).set_index("id")
    frames = []
    for name, (probe_table, run) in probed.items():
        table = outcomes(table_of(run)).set_index("id")
        meta = probe_table.set_index("id")[["source_id", "expect", "note"]]
        missing = sorted(set(meta.index) - set(table.index))
        if missing:
            raise ValueError(f"the run of probe {name} lacks {len(missing)} of its questions, e.g. {missing[:3]}")
        frame = pd.DataFrame({"probe": name, "id": meta.index, "source_id": meta["source_id"].to_numpy(),
                              "title": base.loc[meta["source_id"], "title"].to_numpy(),
                              "has_answer": base.loc[meta["source_id"], "has_answer"].to_numpy(dtype=bool),
                              "expect": meta["expect"].to_numpy(), "note": meta["note"].to_numpy()})
        for column in _RESULT_SIDES:
            frame[f"original_{column}"] = base.loc[meta["source_id"], column].to_numpy()
            frame[f"probed_{column}"] = table.loc[meta.index, column].to_numpy()
        frame["met"] = [expectation_met(e, a, b, x) for e, a, b, x in zip(
            frame["expect"], frame["original_answer"], frame["probed_answer"], frame["probed_exact"])]
        frames.append(frame)
    columns = ["probe", "id", "source_id", "title", "has_answer", "expect", "note"] + \
        [f"{side}_{c}" for c in _RESULT_SIDES for side in ("original", "probed")] + ["met"]
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    for side in ("original", "probed"):
        result[f"{side}_outcome"] = result[f"{side}_outcome"].astype(str)
    return result[columns]
