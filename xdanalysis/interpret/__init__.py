"""Inside the model: attention, attribution (captum), soft targets, the layer lens, CKA and activation patching."""

from .attention import (
    Attention,
    Located,
    STATISTICS,
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
    Attribution,
    Attributor,
    ContextAttribution,
    GradientXInput,
    IntegratedGradients,
    MERGES,
    METHODS,
    TARGETS,
    merge_windows,
    method_of,
    remove_words,
    to_words,
)
from .attribution_stats import (
    DECISION_GROUPS,
    attention_attribution_correlation,
    attribution_shares,
    attribution_statistics,
    summarize_attribution_statistics,
)
from .layers import LENSES, LayerLens, TunedLens, fit_tuned_lens, layer_lens, qa_head
from .patching import SITES, encoder_layers, patch_abstention, patched, patching_summary
from .representations import cka, cka_map, layer_representations, rank_layer_subsets
from .soft_targets import attention_similarity, slice_kl, soft_target_kl, soft_targets, word_distributions

__all__ = ['Attention', 'Attribution', 'Attributor', 'ContextAttribution', 'DECISION_GROUPS', 'GradientXInput', 'IntegratedGradients', 'LENSES', 'LayerLens', 'Located', 'MERGES', 'METHODS', 'SITES', 'STATISTICS', 'TARGETS', 'TunedLens', 'attention_attribution_correlation', 'attention_similarity', 'attribution_shares', 'attribution_statistics', 'cka', 'cka_map', 'cls_by_layer', 'crop_indices', 'encoder_layers', 'fit_tuned_lens', 'get_attention', 'head_statistics', 'head_statistics_of', 'layer_lens', 'layer_representations', 'locate', 'merge_windows', 'method_of', 'patch_abstention', 'patched', 'patching_summary', 'qa_head', 'question_to_context', 'rank_layer_subsets', 'remove_words', 'slice_kl', 'soft_target_kl', 'soft_targets', 'summarize_attribution_statistics', 'summarize_head_statistics', 'to_words', 'word_distributions']
