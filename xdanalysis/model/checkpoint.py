"""Checkpoints on disk: saving a model with its tokenizer, and transformers' own progress bars while a
checkpoint is read or written."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from ..core.common import bars_stay

__all__ = ['save_checkpoint', 'transformers_bars']


@contextmanager
def transformers_bars():
    """While inside, transformers' own progress bars (loading weights, writing shards) behave as ours do
    (``bars_stay``): in a notebook a finished one gives way to the next instead of a stack of them building up
    in a cell; in a terminal they are left as transformers draws them. The hook in place before is put back."""
    from transformers.utils import logging

    setter = getattr(logging, "set_tqdm_hook", None)  # absent from older transformers: bars left as they are
    if setter is None or bars_stay():
        yield
        return
    previous = None

    def transient(factory, args, kwargs):
        kwargs = {**kwargs, "leave": False}
        return previous(factory, args, kwargs) if previous else factory(*args, **kwargs)

    previous = setter(transient)
    try:
        yield
    finally:
        setter(previous)


def save_checkpoint(model, tokenizer, out) -> Path:
    """``model`` and ``tokenizer`` saved as one checkpoint directory ``out`` (created if missing)."""
    out = Path(out).expanduser()
    with transformers_bars():
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
