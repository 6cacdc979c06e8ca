"""Models: loading (Hub or local), device, dtype and runtime (PyTorch or OpenVINO), windows, the one forward pass,
predicting a table."""

from .device import DEVICES, DTYPES, resolve_device, resolve_dtype
from .forward import forward_windows
from .loading import DEFAULT_MODEL, ModelLoadError, load_qa_model, model_problem
from .predict import predict_table
from .openvino import Calibration, OpenVINOError
from .pruning import load_pruned, prune_heads, save_pruned
from .quantize import Int8Error, quantize_int8
from .runtime import NeedsTorchError, model_runtime, require_torch
from .windows import Windows, prepare_windows, window_labels

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['Calibration', 'DEFAULT_MODEL', 'DEVICES', 'DTYPES', 'Int8Error', 'ModelLoadError', 'NeedsTorchError',
           'OpenVINOError', 'Windows', 'forward_windows', 'load_pruned', 'load_qa_model', 'model_problem',
           'model_runtime', 'predict_table', 'prepare_windows', 'prune_heads', 'quantize_int8', 'require_torch',
           'resolve_device', 'resolve_dtype', 'save_pruned', 'window_labels']
