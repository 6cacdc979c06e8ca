"""Every figure and HTML view: data in, figure out; nothing here runs a model."""

from .attention import (
    plot_cls_by_layer,
    plot_head,
    plot_head_grid,
    plot_head_statistics,
    plot_question_to_context,
    plot_statistic_difference,
)
from .attribution import attribution_html, plot_deletion_curves, plot_layer_correlation, plot_top_tokens
from .compare import (
    plot_attention_similarity,
    plot_slice_differences,
    plot_soft_targets,
    plot_tradeoff,
    plot_transitions,
)
from .causes import (
    plot_cause_abstention,
    plot_cause_margins,
    plot_deletion_flips,
    plot_plausibility,
    rationale_html,
)
from .compress import compression_display, plot_frontier, plot_head_importance, plot_threshold_shift
from .concentrate import plot_error_tree, plot_slice_grid
from .display import show_example, show_probe_pair
from .distill import plot_entropy, plot_gradient_scale, plot_lab_students, plot_learning_curves
from .layers import plot_cka_map, plot_layer_accuracy, plot_layer_distributions, plot_patching
from .plots import (
    plot_confusion,
    plot_null_odds,
    plot_official_curves,
    plot_outcomes,
    plot_probe_consistency,
    plot_reliability,
    plot_risk_coverage,
    plot_scores,
    plot_slice,
    plot_threshold_curve,
)
from .summary import abstaining_warning, summary_text
from .tables import readable, threshold_audit_table

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['abstaining_warning', 'attribution_html', 'compression_display', 'plot_attention_similarity',
           'plot_cause_abstention', 'plot_cause_margins', 'plot_cka_map', 'plot_cls_by_layer', 'plot_confusion',
           'plot_deletion_curves', 'plot_deletion_flips', 'plot_entropy', 'plot_error_tree', 'plot_frontier',
           'plot_gradient_scale', 'plot_head', 'plot_head_grid', 'plot_head_importance', 'plot_head_statistics',
           'plot_lab_students', 'plot_layer_accuracy', 'plot_layer_correlation', 'plot_layer_distributions',
           'plot_learning_curves', 'plot_null_odds', 'plot_official_curves', 'plot_outcomes', 'plot_patching',
           'plot_plausibility', 'plot_probe_consistency', 'plot_question_to_context', 'plot_reliability',
           'plot_risk_coverage', 'plot_scores', 'plot_slice', 'plot_slice_differences', 'plot_slice_grid',
           'plot_soft_targets', 'plot_statistic_difference', 'plot_threshold_curve', 'plot_threshold_shift',
           'plot_top_tokens', 'plot_tradeoff', 'plot_transitions', 'rationale_html', 'readable', 'show_example',
           'show_probe_pair', 'summary_text', 'threshold_audit_table']
