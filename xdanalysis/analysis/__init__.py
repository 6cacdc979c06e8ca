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
from .error_tree import ERROR_FEATURES, ERROR_TARGETS, ErrorTree, context_halves, error_features, error_tree
from .gold import AGREEMENT_BUCKETS, GOLD_KINDS, GoldAudit, agreement_bucket, gold_agreement, gold_audit, majority_gold
from .outcomes import ERROR_OUTCOMES, OUTCOMES, confusion, outcomes
from .probes import (
    EXPECTATIONS,
    FAILURE_KINDS,
    PROBES,
    PROBE_COLUMNS,
    Probe,
    apply_probe,
    expectation_met,
    load_probes,
    probe_examples,
    probe_failures,
    probe_names,
    probe_results,
    probe_summary,
    probe_summary_text,
    run_probes,
)
from .selective import aurc, coverage_at, risk_coverage, selective_summary
from .slices import (
    CELL_SEPARATOR,
    SLICES,
    SLICE_COLUMNS,
    Slice,
    bucket_labels,
    degenerate_slice,
    examples,
    per_bucket,
    slice_grid,
    slice_pair,
    slice_table,
    slice_values,
)
from .thresholds import (
    answered_at,
    cross_fitted_threshold,
    run_threshold,
    scores_at,
    threshold_curve,
    threshold_summary,
)
from .tradeoff import model_profile, tradeoff_table

__all__ = ['AGREEMENT_BUCKETS', 'CARD_POINTS', 'CELL_SEPARATOR', 'Comparison', 'ERROR_FEATURES', 'ERROR_OUTCOMES', 'ERROR_TARGETS', 'EXPECTATIONS', 'ErrorTree', 'FAILURE_KINDS', 'GOLD_KINDS', 'GoldAudit', 'OUTCOMES', 'PROBES', 'PROBE_COLUMNS', 'Probe', 'RELIABILITY_GROUPS', 'SLICES', 'SLICE_COLUMNS', 'Slice', 'agreement_bucket', 'answered_at', 'apply_probe', 'aurc', 'best_span_probabilities', 'bucket_labels', 'calibration_summary', 'compare', 'confusion', 'context_halves', 'coverage_at', 'cross_fitted_threshold', 'decision_confidence', 'degenerate_slice', 'error_features', 'error_tree', 'examples', 'expectation_met', 'gold_agreement', 'gold_audit', 'load_probes', 'majority_gold', 'model_profile', 'outcomes', 'per_bucket', 'probe_examples', 'probe_failures', 'probe_names', 'probe_results', 'probe_summary', 'probe_summary_text', 'reliability', 'risk_coverage', 'run_probes', 'run_threshold', 'scores_at', 'selective_summary', 'slice_grid', 'slice_pair', 'slice_table', 'slice_values', 'threshold_curve', 'threshold_summary', 'tradeoff_table', 'transition_table']
