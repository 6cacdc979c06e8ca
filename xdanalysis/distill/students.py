"""Students: a teacher cut to some of its layers, or any checkpoint."""

from __future__ import annotations

from pathlib import Path

from ..core.common import is_reference

__all__ = ['cut_layers', 'layer_student']


def layer_student(teacher, out, *, layers=(0, 2, 4)) -> Path:
    """A smaller student cut from ``teacher`` (a local checkpoint or a loaded ``(model, tokenizer)``):
    its embeddings, QA head and the encoder ``layers`` listed, as DistilBERT initialises its
    student, saved to ``out`` with the teacher's tokenizer. It is not retrained: a starting point
    for distillation, and a real, smaller model for the comparisons here, offline.

    Example::

        layer_student("../shared/models/minilm-l6-squad2-demo", "runs/students/demo-l3", layers=(0, 2, 4))
    """
    from ..model.checkpoint import save_checkpoint
    from ..model.loading import load_qa_model

    model, tokenizer = load_qa_model(teacher) if is_reference(teacher) else teacher
    return save_checkpoint(cut_layers(model, layers), tokenizer, out)  # a copy: the caller's model is not changed


# Students ------------------------------------------------------------------------------------

def cut_layers(model, layers):
    """A copy of ``model`` keeping its embeddings, its head and the encoder ``layers`` listed (the
    way DistilBERT initialises its student); the model given is not changed.

    Example::

        student = cut_layers(teacher, (0, 2, 4))
    """
    import copy

    model = copy.deepcopy(model)
    encoder = getattr(model.base_model, "encoder", None)
    stack = getattr(encoder, "layer", None)
    if stack is None:
        raise ValueError(f"{type(model).__name__}: no encoder.layer stack to cut layers from; pass a student "
                         "checkpoint instead (--student)")
    layers = [int(i) for i in layers]
    if not layers or any(not 0 <= i < len(stack) for i in layers):
        raise ValueError(f"layers {layers} must be indices of the teacher's {len(stack)} layers")
    if len(set(layers)) < len(layers):  # a layer kept twice would share its weights, and cannot be saved
        raise ValueError(f"layers {layers} name a layer twice; keep each teacher layer at most once")
    encoder.layer = type(stack)([stack[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    return model


def _load(model, **kwargs):
    from ..model.loading import load_qa_model

    return load_qa_model(model, **kwargs) if is_reference(model) else model
