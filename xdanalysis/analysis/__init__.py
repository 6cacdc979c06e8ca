"""Analyses of a run's table (no model needed): outcomes, slices, thresholds, selective QA, calibration,
comparison of two runs, robustness probes' rewrites and summaries (their runs: :mod:`xdanalysis.labs`)."""

from .outcomes import OUTCOMES, confusion, outcomes
from .slices import INTERSECTION_SLICES, SLICES, Slice, examples, slice_grid, slice_table, top_intersections
from .thresholds import cross_fitted_threshold, threshold_curve, threshold_summary
from .selective import aurc, curve_aurc, risk_coverage, selective_summary
from .calibration import Reliability, calibration_summary, reliability
from .compare import Comparison, compare, forced_difference, transition_table
from .causes import cause_summary, deletion_flips, with_causes
from .rationales import against_random, plausibility_summary, rationale_agreement
from .error_tree import ErrorTree, error_tree
from .gold import GoldAudit, gold_agreement, gold_audit
from .probes import PROBES, apply_probe, probe_examples, probe_failures, probe_pairs, probe_results, probe_summary

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['INTERSECTION_SLICES', 'OUTCOMES', 'PROBES', 'SLICES', 'Comparison', 'ErrorTree', 'GoldAudit',
           'Reliability', 'Slice', 'against_random', 'apply_probe', 'aurc', 'calibration_summary', 'cause_summary',
           'compare', 'confusion', 'cross_fitted_threshold', 'curve_aurc', 'deletion_flips', 'error_tree', 'examples',
           'forced_difference', 'gold_agreement', 'gold_audit', 'outcomes', 'plausibility_summary', 'probe_examples',
           'probe_failures', 'probe_pairs', 'probe_results', 'probe_summary', 'rationale_agreement', 'reliability',
           'risk_coverage', 'selective_summary', 'slice_grid', 'slice_table', 'threshold_curve', 'threshold_summary',
           'top_intersections', 'transition_table', 'with_causes']
