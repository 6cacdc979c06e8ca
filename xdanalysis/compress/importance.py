"""Which attention heads matter: Michel, Levy and Neubig (2019), "Are Sixteen Heads Really Better than
One?". A head's importance is the expected absolute gradient of the QA loss with respect to a gate
on that head's output (all gates 1, so the model is unchanged), over training questions; each
layer's scores are divided by their L2 norm, as the paper does before pruning across layers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.common import progress_bar
from ..core.settings import WindowSettings

__all__ = ['head_importance', 'heads_to_prune']


def head_importance(model, tokenizer, table: pd.DataFrame, *, windowing: WindowSettings = WindowSettings(),
                    batch_size: int = 8, normalise: bool = True, progress: bool = True) -> np.ndarray:
    """``[layers, heads]`` importance of every head of ``model`` on the questions of ``table`` (with
    gold answers: use training articles, never the ones you evaluate on). The gradient is taken per
    batch of ``batch_size`` windows (the paper's expectation, a batch at a time); ``normalise``
    divides each layer by its L2 norm. The model is not changed.

    Example::

        scores = head_importance(model, tokenizer, load_squad(path, exclude_titles=held_out, limit=200))
    """
    import torch

    from ..model.forward import batch_tensors
    from ..model.pruning import attention_blocks
    from ..model.windows import length_batches, prepare_windows, window_labels

    blocks = attention_blocks(model)
    size = blocks[0][0].attention_head_size
    gates = torch.ones(len(blocks), blocks[0][0].num_attention_heads, requires_grad=True)

    def gate(layer):
        def hook(module, args):
            x = args[0]
            return (x * gates[layer].repeat_interleave(size).to(x.dtype),) + tuple(args[1:])
        return hook

    windows = prepare_windows(table, tokenizer, windowing)
    starts, ends = window_labels(table, windows)
    hooks = [output.register_forward_pre_hook(gate(layer)) for layer, (_, output) in enumerate(blocks)]
    trainable = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    model.eval().requires_grad_(False)
    total = torch.zeros_like(gates)
    try:
        for batch in progress_bar(length_batches(windows.lengths(), batch_size, None), desc="head importance",
                          disable=not progress, leave=False):
            inputs = batch_tensors(windows, batch, device=next(model.parameters()).device)
            loss = model(**inputs, start_positions=torch.as_tensor(starts[batch]),
                         end_positions=torch.as_tensor(ends[batch])).loss
            (grad,) = torch.autograd.grad(loss * len(batch), gates)
            total += grad.abs()
    finally:
        for handle in hooks:
            handle.remove()
        for parameter, flag in zip(model.parameters(), trainable):
            parameter.requires_grad_(flag)
        model.train(was_training)
    scores = (total / max(1, len(windows))).numpy()
    if normalise:
        scores = scores / np.maximum(np.linalg.norm(scores, axis=1, keepdims=True), 1e-12)
    return scores


def heads_to_prune(importance: np.ndarray, fraction: float) -> dict:
    """The least important ``fraction`` of all heads, as ``{layer: [heads]}``; a layer keeps at least
    its most important head (the next least important head elsewhere is taken instead).

    >>> heads_to_prune(np.array([[0.1, 0.9], [0.2, 0.05]]), 0.5)
    {0: [0], 1: [1]}
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    importance = np.asarray(importance, dtype=float)
    layers, heads = importance.shape
    target = int(round(fraction * layers * heads))
    chosen: dict = {}
    for flat in np.argsort(importance, axis=None, kind="stable"):
        if sum(map(len, chosen.values())) >= target:
            break
        layer, head = divmod(int(flat), heads)
        if len(chosen.get(layer, [])) < heads - 1:
            chosen.setdefault(layer, []).append(head)
    return {layer: sorted(v) for layer, v in sorted(chosen.items())}
