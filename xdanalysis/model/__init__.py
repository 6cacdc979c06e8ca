"""Models: loading (Hub or local), device and dtype, windows, the one forward pass, predicting a table."""

from .device import (
    DEVICES,
    DTYPES,
    cpu_flags,
    fast_bfloat16,
    model_device_dtype,
    resolve_device,
    resolve_dtype,
    resolve_placement,
)
from .forward import WindowOutput, batch_tensors, eager_attention, forward_windows, run_windows
from .loading import (
    CARD_FIGURES,
    DEFAULT_MODEL,
    ModelLoadError,
    load_qa_model,
    looks_local,
    max_sequence_length,
    model_files,
    model_identity,
    model_problem,
    require_model,
    training_overlap,
    training_record,
    weights_fingerprint,
)
from .predict import decode_windows, predict_chunk, predict_table, question_windows, token_lengths
from .pruning import PRUNED_HEADS_FILE, attention_blocks, load_pruned, prune_heads, save_pruned
from .quantize import (
    INT8_CACHE_ENV,
    Int8Error,
    int8_cache_dir,
    int8_layers,
    int8_model,
    int8_settings_of,
    quantize_int8,
)
from .windows import Windows, length_batches, prepare_windows, window_labels

__all__ = ['CARD_FIGURES', 'DEFAULT_MODEL', 'DEVICES', 'DTYPES', 'INT8_CACHE_ENV', 'Int8Error', 'ModelLoadError', 'PRUNED_HEADS_FILE', 'WindowOutput', 'Windows', 'attention_blocks', 'batch_tensors', 'cpu_flags', 'decode_windows', 'eager_attention', 'fast_bfloat16', 'forward_windows', 'int8_cache_dir', 'int8_layers', 'int8_model', 'int8_settings_of', 'length_batches', 'load_pruned', 'load_qa_model', 'looks_local', 'max_sequence_length', 'model_device_dtype', 'model_files', 'model_identity', 'model_problem', 'predict_chunk', 'predict_table', 'prepare_windows', 'prune_heads', 'quantize_int8', 'question_windows', 'require_model', 'resolve_device', 'resolve_dtype', 'resolve_placement', 'run_windows', 'save_pruned', 'token_lengths', 'training_overlap', 'training_record', 'weights_fingerprint', 'window_labels']
