"""Inside the model: attention, attribution (captum), soft targets, the layer lens, CKA and activation patching."""

from .attention import (
    Attention,
    cls_by_layer,
    get_attention,
    head_differences,
    head_statistics,
    head_statistics_of,
    question_to_context,
    summarize_head_statistics,
)
from .attribution import (
    Attribution,
    Attributor,
    ContextAttribution,
    GradientXInput,
    IntegratedGradients,
    deletion_area,
    to_words,
)
from .attribution_stats import (
    attention_attribution_correlation,
    attribution_statistics,
    summarize_attribution_statistics,
)
from .layers import LayerLens, TunedLens, fit_tuned_lens, layer_lens
from .patching import patch_abstention, patching_summary
from .plausibility import PLAUSIBILITY_METHODS, explain_rationales
from .reader import Reader
from .representations import CKAMap, LayerRanking, cka_map, rank_layer_subsets, rank_layers_from_evidence
from .soft_targets import attention_similarity, slice_kl, soft_target_kl, soft_targets

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['PLAUSIBILITY_METHODS', 'Attention', 'Attribution', 'Attributor', 'CKAMap', 'ContextAttribution',
           'GradientXInput', 'IntegratedGradients', 'LayerLens', 'LayerRanking', 'Reader', 'TunedLens',
           'attention_attribution_correlation', 'attention_similarity', 'attribution_statistics', 'cka_map',
           'cls_by_layer', 'deletion_area', 'explain_rationales', 'fit_tuned_lens', 'get_attention',
           'head_differences', 'head_statistics', 'head_statistics_of', 'layer_lens', 'patch_abstention',
           'patching_summary', 'question_to_context', 'rank_layer_subsets', 'rank_layers_from_evidence', 'slice_kl',
           'soft_target_kl', 'soft_targets', 'summarize_attribution_statistics', 'summarize_head_statistics',
           'to_words']
