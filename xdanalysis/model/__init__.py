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
)
from .predict import decode_windows, predict_chunk, predict_table, question_windows, token_lengths
from .windows import Windows, length_batches, prepare_windows, window_labels

__all__ = ['CARD_FIGURES', 'DEFAULT_MODEL', 'DEVICES', 'DTYPES', 'ModelLoadError', 'WindowOutput', 'Windows', 'batch_tensors', 'cpu_flags', 'decode_windows', 'eager_attention', 'fast_bfloat16', 'forward_windows', 'length_batches', 'load_qa_model', 'looks_local', 'max_sequence_length', 'model_device_dtype', 'model_files', 'model_identity', 'model_problem', 'predict_chunk', 'predict_table', 'prepare_windows', 'question_windows', 'require_model', 'resolve_device', 'resolve_dtype', 'resolve_placement', 'run_windows', 'token_lengths', 'training_overlap', 'training_record', 'window_labels']
