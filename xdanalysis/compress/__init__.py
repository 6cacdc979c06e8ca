"""Compression: head importance, and the variants of a model (quantised, pruned heads, dropped layers,
students) built as checkpoints; the lab that runs and judges them is :mod:`xdanalysis.labs.compress`."""

from .importance import head_importance, heads_to_prune
from .variants import DEFAULT_VARIANT_TEXT, DEFAULT_VARIANTS, Variant, parse_variant, split_variants, student_variant

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['DEFAULT_VARIANTS', 'DEFAULT_VARIANT_TEXT', 'Variant', 'head_importance', 'heads_to_prune', 'parse_variant',
           'split_variants', 'student_variant']
