"""The compression lab: quantisation, head pruning, layer dropping and distilled students, each run
as a normal cached run and judged the SQuAD 2.0 way against float32."""

from .importance import head_importance, heads_to_prune
from .study import CompressSettings, Compression, compress, verdict
from .variants import DEFAULT_VARIANTS, Variant, parse_variant, split_variants, student_variant

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['DEFAULT_VARIANTS', 'CompressSettings', 'Compression', 'Variant', 'compress', 'head_importance',
           'heads_to_prune', 'parse_variant', 'split_variants', 'student_variant', 'verdict']
