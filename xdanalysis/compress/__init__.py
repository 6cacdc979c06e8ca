"""The compression lab: quantisation, head pruning, layer dropping and distilled students, each run
as a normal cached run and judged the SQuAD 2.0 way against float32."""

from .importance import head_importance, heads_to_prune
from .study import COMPRESS_FILE, CompressSettings, Compression, compress, verdict
from .variants import (
    DEFAULT_VARIANTS,
    KINDS,
    Variant,
    build_checkpoint,
    parse_variant,
    split_variants,
    student_variant,
    variant_names,
)

__all__ = ['COMPRESS_FILE', 'CompressSettings', 'Compression', 'DEFAULT_VARIANTS', 'KINDS', 'Variant', 'build_checkpoint', 'compress', 'head_importance', 'heads_to_prune', 'parse_variant', 'split_variants', 'student_variant', 'variant_names', 'verdict']
