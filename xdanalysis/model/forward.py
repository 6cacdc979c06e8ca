"""The one batched forward pass over windows: device, padding and attentions handled here once."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..core.common import progress_bar
from .runtime import require_torch
from .quantize import int8_settings_of
from .windows import Windows, length_batches

__all__ = ['WindowOutput', 'batch_tensors', 'eager_attention', 'forward_windows', 'run_windows']


@contextmanager
def eager_attention(model):
    """Run ``model`` with eager attention inside the block (the only kind that returns weights in
    transformers 5), and switch back after."""
    previous = getattr(model.config, "_attn_implementation", None)
    switch = previous != "eager"
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if switch and previous is not None:
            model.set_attn_implementation(previous)


@dataclass
class WindowOutput:
    """One window's model output on the CPU, trimmed to its real tokens: ``start_logits`` and
    ``end_logits`` (float32 ``[tokens]``), ``attentions`` (``[layers, heads, tokens, tokens]``) and
    ``hidden_states`` (``[layers + 1, tokens, hidden]``: the embeddings, then each layer's output)
    when asked for."""

    start_logits: np.ndarray
    end_logits: np.ndarray
    attentions: np.ndarray | None = None
    hidden_states: np.ndarray | None = None


def batch_tensors(windows: Windows, indices, *, device=None) -> dict:
    """The model inputs of the windows at ``indices``: ``input_ids``, ``attention_mask`` (and
    ``token_type_ids`` when the model has them), padded on the right to the longest window and
    moved to ``device``. Shared by inference and training."""
    import torch

    indices = [int(i) for i in indices]
    lengths = [len(windows.input_ids[i]) for i in indices]
    width = max(lengths)
    has_types = windows.token_type_ids is not None
    ids = torch.full((len(indices), width), windows.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    types = torch.zeros((len(indices), width), dtype=torch.long) if has_types else None
    for row, (index, n) in enumerate(zip(indices, lengths)):
        ids[row, :n] = torch.as_tensor(windows.input_ids[index])
        mask[row, :n] = 1
        if has_types:
            types[row, :n] = torch.as_tensor(windows.token_type_ids[index])
    inputs = {"input_ids": ids, "attention_mask": mask}
    if has_types:
        inputs["token_type_ids"] = types
    if device is None:
        return inputs
    if torch.device(device).type == "cuda":  # pinned pages: the copy to the GPU runs without a staging copy
        return {name: tensor.pin_memory().to(device, non_blocking=True) for name, tensor in inputs.items()}
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def forward_windows(model, windows: Windows, indices, *, attentions: bool = False,
                    hidden_states: bool = False) -> list[WindowOutput]:
    """The one forward pass everything model-facing shares: the windows at ``indices`` in one
    batch, padded on the right to the longest, moved to the model's device; results come back on
    the CPU as numpy, in the order of ``indices``.

    Example::

        first = forward_windows(model, windows, [0])[0]
        first.start_logits[windows.cls_index[0]]
    """
    import torch

    if attentions or hidden_states:
        require_torch(model, "attention weights" if attentions else "hidden states")
    indices = [int(i) for i in indices]
    if not indices:
        return []
    lengths = [len(windows.input_ids[i]) for i in indices]
    inputs = batch_tensors(windows, indices, device=next(model.parameters()).device)
    extra = {"output_hidden_states": True} if hidden_states else {}
    with torch.inference_mode():
        if attentions:
            with eager_attention(model):
                output = model(**inputs, output_attentions=True, **extra)
        else:
            output = model(**inputs, **extra)
    for asked, name in ((attentions, "attentions"), (hidden_states, "hidden_states")):
        if asked and getattr(output, name, None) is None:
            kind = getattr(model.config, "model_type", None) or type(model).__name__
            raise ValueError(f"model type {kind!r} ({type(model).__name__}) returns no {name} when asked "
                             f"(output_{name}=True): the layer lens, CKA, patching and attention views need them; "
                             "use a transformers model that returns them (BERT, RoBERTa, ELECTRA, DistilBERT, XLNet)")
    start = output.start_logits.float().cpu().numpy()
    end = output.end_logits.float().cpu().numpy()
    maps = states = None
    if attentions:
        maps = torch.stack([layer.float() for layer in output.attentions], dim=1).cpu().numpy()  # [b, L, H, s, s]
    if hidden_states:
        states = torch.stack([layer.float() for layer in output.hidden_states], dim=1).cpu().numpy()  # [b, L+1, s, d]
    return [WindowOutput(start[row, :n].copy(), end[row, :n].copy(),
                         None if maps is None else maps[row, :, :, :n, :n].copy(),
                         None if states is None else states[row, :, :n].copy())
            for row, n in enumerate(lengths)]


def run_windows(model, windows: Windows, *, batch_size: int = 32, progress: bool = True, desc: str = "windows",
                max_batch_tokens: int | None = 2048) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start and end logits for every window, each trimmed to the window's real length.

    Windows run longest first in batches (see :func:`length_batches`) through
    :func:`forward_windows`, each padded only to its own longest window; results come back in
    the input order. An int8 model quantised ``per_window`` (:class:`~xdanalysis.core.settings.Int8Settings`)
    runs one window at a time.
    """
    lengths = windows.lengths()
    if (int8_settings_of(model) or {}).get("per_window"):
        batch_size = 1  # int8 quantises a batch's activations together: one window each keeps answers its own
    results: list = [None] * len(lengths)
    bar = progress_bar(total=len(lengths), desc=desc, unit="win", disable=not progress, leave=False)
    for batch in length_batches(lengths, batch_size, max_batch_tokens):
        for index, output in zip(batch, forward_windows(model, windows, batch)):
            results[index] = (output.start_logits, output.end_logits)
        bar.update(len(batch))
    bar.close()
    return results
