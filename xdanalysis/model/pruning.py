"""Attention heads removed from a model (structured pruning), and pruned checkpoints saved and loaded.

transformers 5 dropped ``prune_heads``; this is the same operation for the BERT family (BERT, RoBERTa,
ELECTRA, MiniLM, XtremeDistil: ``encoder.layer[i].attention.self.{query,key,value}`` and
``attention.output.dense``): the removed heads' rows of query, key and value and their columns of the
output projection are cut out, so the model is smaller and faster, not only masked. A pruned
checkpoint is an ordinary directory plus ``pruned_heads.json``; :func:`xdanalysis.model.load_qa_model`
reads it like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ['PRUNED_HEADS_FILE', 'attention_blocks', 'load_pruned', 'prune_heads', 'pruned_structure',
           'read_pruned_heads', 'save_pruned']


PRUNED_HEADS_FILE = "pruned_heads.json"


def attention_blocks(model) -> list:
    """Each encoder layer's ``(self-attention, output projection)``; a clear error for architectures
    laid out otherwise."""
    stack = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    try:
        return [(layer.attention.self, layer.attention.output.dense) for layer in stack]
    except (AttributeError, TypeError):
        kind = getattr(model.config, "model_type", type(model).__name__)
        raise ValueError(f"model type {kind!r}: head pruning here needs the BERT layout (encoder.layer[i]."
                         "attention.self and attention.output.dense: BERT, RoBERTa, ELECTRA, MiniLM); drop "
                         "whole layers instead (cut_layers) or distil a student") from None


def prune_heads(model, heads: dict) -> None:
    """Remove ``heads`` (``{layer: [head, ...]}``) from an unpruned ``model``, in place; each layer
    keeps at least one head. The model records them in ``model.pruned_heads``."""
    import torch

    if getattr(model, "pruned_heads", None):
        raise ValueError("this model is pruned already; prune the unpruned model once, with every head to remove")
    blocks = attention_blocks(model)
    heads = {int(k): sorted({int(h) for h in v}) for k, v in heads.items() if len(v)}
    for layer, remove in heads.items():
        if not 0 <= layer < len(blocks):
            raise ValueError(f"layer {layer}: the model has layers 0-{len(blocks) - 1}")
        attention, output = blocks[layer]
        size, count = attention.attention_head_size, attention.num_attention_heads
        if any(not 0 <= h < count for h in remove) or len(remove) >= count:
            raise ValueError(f"layer {layer}: cannot remove heads {remove} of its {count}; keep at least one")
        keep = torch.tensor([i for h in range(count) if h not in remove for i in range(h * size, (h + 1) * size)])
        for name in ("query", "key", "value"):
            setattr(attention, name, _linear_part(getattr(attention, name), keep, dim=0))
        model.base_model.encoder.layer[layer].attention.output.dense = _linear_part(output, keep, dim=1)
        attention.num_attention_heads = count - len(remove)
        attention.all_head_size = attention.num_attention_heads * size
    model.pruned_heads = heads


def _linear_part(linear, keep, *, dim: int):
    """A Linear layer keeping the output rows (``dim=0``) or input columns (``dim=1``) at ``keep``."""
    import torch

    weight = linear.weight.detach().index_select(dim, keep).clone()
    bias = linear.bias.detach().clone() if linear.bias is not None else None
    if dim == 0 and bias is not None:
        bias = bias.index_select(0, keep).clone()
    part = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                           device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        part.weight.copy_(weight)
        if bias is not None:
            part.bias.copy_(bias)
    return part


def save_pruned(model, tokenizer, out) -> Path:
    """Save a pruned model as a checkpoint directory (weights, config, tokenizer, ``pruned_heads.json``)."""
    from .checkpoint import save_checkpoint

    out = save_checkpoint(model, tokenizer, out)
    (out / PRUNED_HEADS_FILE).write_text(json.dumps({str(k): v for k, v in model.pruned_heads.items()}) + "\n",
                                         encoding="utf-8")
    return out


def read_pruned_heads(path) -> dict:
    """``{layer: [heads]}`` from a pruned checkpoint's ``pruned_heads.json``; a message naming the file
    when it is missing, not JSON, or not of that shape."""
    file = Path(path) / PRUNED_HEADS_FILE
    try:
        heads = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: unreadable ({exc}); save the pruned model again (save_pruned)") from None
    whole = (lambda x: isinstance(x, int) and not isinstance(x, bool) and x >= 0)
    if not isinstance(heads, dict) or not all(str(k).isdigit() and isinstance(v, list) and all(map(whole, v))
                                              for k, v in heads.items()):
        raise ValueError(f'{file}: must map layer numbers to lists of head numbers, e.g. {{"0": [1, 5]}}; save the '
                         "pruned model again (save_pruned)")
    return {int(k): v for k, v in heads.items()}


def pruned_structure(path):
    """The architecture of the pruned checkpoint in ``path`` (its config, pruned as ``pruned_heads.json``
    says), with freshly initialised weights."""
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    path = Path(path)
    heads = read_pruned_heads(path)
    model = AutoModelForQuestionAnswering.from_config(AutoConfig.from_pretrained(path))
    try:
        prune_heads(model, heads)
    except ValueError as exc:
        raise ValueError(f"{path / PRUNED_HEADS_FILE}: {exc}; the file does not fit this model's config") from None
    return model


def load_pruned(path):
    """The pruned QA model saved in ``path``: built from its config, pruned as ``pruned_heads.json``
    says, then given the saved weights (every one must fit: nothing is left random)."""
    from safetensors.torch import load_file

    path = Path(path)
    model = pruned_structure(path)
    state = load_file(path / "model.safetensors")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit the heads the file names
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc)[:200])
        raise ValueError(f"{path}: the weights in model.safetensors do not fit the heads {PRUNED_HEADS_FILE} says "
                         f"were pruned ({first}); the file was edited or belongs to another checkpoint") from None
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    if [k for k in missing if k not in tied] or unexpected:
        raise ValueError(f"{path}: the saved weights do not fit the pruned model (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    return model.eval()
