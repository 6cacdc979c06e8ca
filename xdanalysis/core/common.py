"""Small helpers shared by every layer (no torch, no pandas): one definition each."""

from __future__ import annotations

import math
import os

__all__ = ['is_reference', 'MAX_NAMED', 'bars_stay', 'check_choice', 'progress_bar', 'logit', 'name_some', 'rename_options', 'sigmoid']


MAX_NAMED = 10


def name_some(ids, limit: int = MAX_NAMED) -> str:
    """The first ``limit`` ids, quoted, and how many more there are.

    >>> name_some(["a", "b", "c"], limit=2)
    "'a', 'b' and 1 more"
    """
    ids = list(ids)
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(repr(i) for i in ids[:limit]) + more


def sigmoid(x: float) -> float:
    """The no-answer probability of a null-odds value, overflow-free.

    >>> sigmoid(0.0), sigmoid(float("inf"))
    (0.5, 1.0)
    """
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def logit(p: float) -> float:
    """The null-odds value of a no-answer probability (the inverse of :func:`sigmoid`).

    >>> logit(0.5), logit(1.0)
    (0.0, inf)
    """
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p / (1.0 - p))


def check_choice(name: str, value, choices) -> None:
    """Raise ``ValueError`` naming the option when ``value`` is not one of ``choices``.

    >>> check_choice("kind", "numeric", ["numeric", "category"])
    """
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; use one of {list(choices)}")


def rename_options(message: str, names: dict) -> str:
    """Say what the user actually set: replace the CLI's option names in ``message``.

    >>> rename_options("no such file; pass --data FILE", {"--data": "DATA="})
    'no such file; pass DATA=FILE'
    """
    import re

    def replace(match):
        option, space = match.group(1), match.group(2) or ""
        name = names.get(option)
        if name is None:
            return match.group(0)
        return name if name.endswith("=") else name + space

    return re.sub(r"(--[a-z][a-z-]*)( (?=[^\s-]))?", replace, message)


def is_reference(thing) -> bool:
    """Whether ``thing`` names what to load (a Hub id, a model or run directory) rather than being a
    loaded object (a ``(model, tokenizer)`` pair, a run).

    >>> is_reference("runs/demo"), is_reference(("model", "tokenizer"))
    (True, False)
    """
    return isinstance(thing, (str, os.PathLike))


def bars_stay() -> bool:
    """Whether a finished progress bar stays on screen: in a terminal yes (its last line says what was done);
    in a notebook no, so that work in many stages (a lab trains, predicts and scores several students) shows
    one bar at a time, each replacing the last, instead of a stack of finished ones.

    >>> bars_stay()   # not in a notebook kernel
    True
    """
    import tqdm.auto

    try:
        from tqdm.notebook import tqdm_notebook
    except ImportError:  # no ipywidgets: tqdm.auto cannot be the notebook bar either
        return True
    return not issubclass(tqdm.auto.tqdm, tqdm_notebook)


def progress_bar(iterable=None, *, leave: bool | None = None, **options):
    """The package's one way to show progress: a tqdm bar (the notebook's widget in a kernel, text in a
    terminal) that, unless ``leave`` says otherwise, stays when done in a terminal and gives way to the next in a
    notebook (:func:`bars_stay`). ``options`` are tqdm's (``total``, ``desc``, ``unit``, ``disable``…)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, leave=bars_stay() if leave is None else leave, **options)
