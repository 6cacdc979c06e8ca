"""Which runtime a loaded model runs on, and the refusal of what only PyTorch gives."""

from __future__ import annotations

__all__ = ['NeedsTorchError', 'model_runtime', 'require_torch']


class NeedsTorchError(ValueError):
    """Something asked of an OpenVINO model that only PyTorch gives (attention weights, hidden states,
    gradients)."""


def model_runtime(model) -> str:
    """``"torch"``, or ``"openvino"`` for :mod:`xdanalysis.model.openvino`'s compiled model.

    >>> model_runtime(object())
    'torch'
    """
    return getattr(model, "runtime", "torch")


def require_torch(model, what: str) -> None:
    """Refuse ``model`` for ``what`` when it runs on OpenVINO: compiled, it gives start and end logits
    only. Says what to load instead.

    >>> require_torch(object(), "attention weights")
    """
    if model_runtime(model) != "torch":
        raise NeedsTorchError(
            f"{what} need PyTorch: this model runs on {model_runtime(model)}, whose compiled model gives start and "
            "end logits only (no attention weights, hidden states or gradients). Load it with runtime='torch' (CLI: "
            "--runtime torch; notebooks: leave XDANALYSIS_RUNTIME unset) for this; OpenVINO is for predictions")
