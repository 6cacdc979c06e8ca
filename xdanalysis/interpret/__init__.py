"""Inside the model: attention, attribution (captum) and soft targets."""

from .attention import (
    STATISTICS,
    Attention,
    Located,
    cls_by_layer,
    crop_indices,
    get_attention,
    head_statistics,
    head_statistics_of,
    locate,
    question_to_context,
    summarize_head_statistics,
)
from .attribution import (
    MERGES,
    METHODS,
    TARGETS,
    Attribution,
    Attributor,
    ContextAttribution,
    GradientXInput,
    IntegratedGradients,
    merge_windows,
    method_of,
    remove_words,
)
from .attribution_stats import (
    DECISION_GROUPS,
    attention_attribution_correlation,
    attribution_shares,
    attribution_statistics,
    summarize_attribution_statistics,
)
from .soft_targets import attention_similarity, slice_kl, soft_target_kl, soft_targets, word_distributions

__all__ = ['Attention', 'Attribution', 'Attributor', 'ContextAttribution', 'DECISION_GROUPS', 'GradientXInput', 'IntegratedGradients', 'Located', 'MERGES', 'METHODS', 'STATISTICS', 'TARGETS', 'attention_attribution_correlation', 'attention_similarity', 'attribution_shares', 'attribution_statistics', 'cls_by_layer', 'crop_indices', 'get_attention', 'head_statistics', 'head_statistics_of', 'locate', 'merge_windows', 'method_of', 'question_to_context', 'remove_words', 'slice_kl', 'soft_target_kl', 'soft_targets', 'summarize_attribution_statistics', 'summarize_head_statistics', 'word_distributions']
