"""Analyses of a run's table (no model needed): outcomes, slices, thresholds, selective QA, calibration,
comparison of two runs, robustness probes."""

from .calibration import (
    RELIABILITY_GROUPS,
    best_span_probabilities,
    calibration_summary,
    decision_confidence,
    reliability,
)
from .compare import CARD_POINTS, Comparison, compare, transition_table
from .outcomes import ERROR_OUTCOMES, OUTCOMES, confusion, outcomes
from .probes import (
    EXPECTATIONS,
    PROBE_COLUMNS,
    PROBES,
    Probe,
    apply_probe,
    expectation_met,
    load_probes,
    probe_examples,
    probe_names,
    probe_results,
    probe_summary,
    probe_summary_text,
    run_probes,
)
from .selective import aurc, coverage_at, risk_coverage, selective_summary
from .slices import SLICE_COLUMNS, SLICES, Slice, bucket_labels, examples, per_bucket, slice_table, slice_values
from .thresholds import (
    answered_at,
    cross_fitted_threshold,
    run_threshold,
    scores_at,
    threshold_curve,
    threshold_summary,
)
from .tradeoff import model_profile, tradeoff_table

__all__ = ['CARD_POINTS', 'Comparison', 'ERROR_OUTCOMES', 'EXPECTATIONS', 'OUTCOMES', 'PROBES', 'PROBE_COLUMNS', 'Probe', 'RELIABILITY_GROUPS', 'SLICES', 'SLICE_COLUMNS', 'Slice', 'answered_at', 'apply_probe', 'aurc', 'best_span_probabilities', 'bucket_labels', 'calibration_summary', 'compare', 'confusion', 'coverage_at', 'cross_fitted_threshold', 'decision_confidence', 'examples', 'expectation_met', 'load_probes', 'model_profile', 'outcomes', 'per_bucket', 'probe_examples', 'probe_names', 'probe_results', 'probe_summary', 'probe_summary_text', 'reliability', 'risk_coverage', 'run_probes', 'run_threshold', 'scores_at', 'selective_summary', 'slice_table', 'slice_values', 'threshold_curve', 'threshold_summary', 'tradeoff_table', 'transition_table']
