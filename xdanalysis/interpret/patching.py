"""Which layers carry the decision to abstain: activation patching on probe pairs (an answerable
question and its rewrite without the answer's sentence). A forward hook on the model as it is
replaces one layer's output at some positions with the other run's; hooks are always removed."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd

from ..core.common import check_choice, progress_bar
from ..core.decoding import Window, decode_question
from ..core.settings import DecodingSettings, WindowSettings
from ..core.stats import bootstrap_ci
from ..model.forward import forward_windows
from ..model.runtime import require_torch
from ..model.windows import prepare_windows

__all__ = ['SITES', 'encoder_layers', 'patch_abstention', 'patched', 'patching_summary']

# Where a layer's output is replaced: the [CLS] token, the question's tokens, or every position
# both windows have (the rest of a longer window keeps its own).
SITES = ["cls", "question", "all"]


def encoder_layers(model) -> list:
    """The model's stack of transformer layers, for hooks (BERT-like ``encoder.layer``,
    DistilBERT's ``transformer.layer``), or a clear error naming the model type."""
    base = model.base_model
    for path in (("encoder", "layer"), ("transformer", "layer"), ("layer",)):
        stack = base
        for name in path:
            stack = getattr(stack, name, None)
        if stack is not None:
            return list(stack)
    raise ValueError(f"cannot find the transformer layers of a {type(model).__name__} (looked for encoder.layer and "
                     "transformer.layer): activation patching supports BERT-, RoBERTa-, ELECTRA- and DistilBERT-like models")


# Model families whose layers pass hidden states sequence-first ([tokens, batch, hidden]); their outputs
# (hidden_states, logits) are batch-first like every other's.
SEQUENCE_FIRST = {"xlnet"}


def _sequence_first_layers(model) -> bool:
    return getattr(model.config, "model_type", None) in SEQUENCE_FIRST


@contextmanager
def patched(model, layer: int, positions, values):
    """Inside the block, encoder layer ``layer``'s output at ``positions`` (of the first sequence
    of the batch) is replaced by ``values`` (``[positions, hidden]``); the hook is removed on leaving,
    error or not."""
    import torch

    require_torch(model, "Activation patching (hooks on the encoder's layers)")
    positions = torch.as_tensor(list(positions), dtype=torch.long)
    replacement = torch.as_tensor(np.asarray(values))
    sequence_first = _sequence_first_layers(model)

    def hook(module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden.clone()
        if sequence_first:  # XLNet's layers run [tokens, batch, hidden]
            hidden[positions, 0] = replacement.to(hidden.dtype)
        else:
            hidden[0, positions] = replacement.to(hidden.dtype)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = encoder_layers(model)[layer].register_forward_hook(hook)
    try:
        yield model
    finally:
        handle.remove()


def _positions(site: str, kinds, cls: int, shared: int) -> list[int]:
    if site == "cls":
        return [cls]
    if site == "question":
        return [i for i, kind in enumerate(kinds) if kind == "question"]
    return list(range(shared))


def _null_odds(output, windows, index: int, context: str, decoding: DecodingSettings) -> float:
    window = Window(windows.offsets[index], output.start_logits, output.end_logits, windows.cls_index[index])
    return float(decode_question(context, [window], decoding=decoding)["null_odds"])


def patch_abstention(model, tokenizer, pairs: pd.DataFrame, *, sites=SITES,
                     windowing: WindowSettings = WindowSettings(), decoding: DecodingSettings = DecodingSettings(),
                     progress: bool = True) -> pd.DataFrame:
    """For every pair (``question``, ``original_context``: answerable; ``probed_context``: the
    same question without the answer's sentence, as ``remove_answer_sentence`` writes them) and
    every layer and site: run the original with that layer's output replaced by the rewrite's at
    the site, and record the null odds. ``restored`` is the share of the gap between the two runs'
    null odds that the patch closes (1: the layer alone carries the decision there). First windows.

    Example::

        pairs = probe_examples(results, probe="remove_answer_sentence")
        patching_summary(patch_abstention(model, tokenizer, pairs.head(40)))
    """

    for site in sites:
        check_choice("site", site, SITES)
    layers = len(encoder_layers(model))
    rows = []
    for pair in progress_bar(list(pairs.itertuples(index=False)), desc="patching", unit="pair", disable=not progress):
        frame = pd.DataFrame({"question": [pair.question] * 2, "context": [pair.original_context, pair.probed_context]})
        windows = prepare_windows(frame, tokenizer, windowing)
        first = [windows.question_index.index(k) for k in (0, 1)]
        clean, donor = forward_windows(model, windows, first[:1])[0], forward_windows(model, windows, first[1:],
                                                                                      hidden_states=True)[0]
        before = _null_odds(clean, windows, first[0], pair.original_context, decoding)
        after = _null_odds(donor, windows, first[1], pair.probed_context, decoding)
        shared = min(len(windows.input_ids[first[0]]), len(windows.input_ids[first[1]]))
        for layer in range(layers):
            for site in sites:
                positions = _positions(site, windows.kinds[first[0]], windows.cls_index[first[0]], shared)
                with patched(model, layer, positions, donor.hidden_states[layer + 1][positions]):
                    output = forward_windows(model, windows, first[:1])[0]
                odds = _null_odds(output, windows, first[0], pair.original_context, decoding)
                rows.append({"id": getattr(pair, "id", None), "layer": layer, "site": site, "original_null_odds": before,
                             "probed_null_odds": after, "patched_null_odds": odds, "change": odds - before,
                             "restored": (odds - before) / (after - before) if after != before else np.nan})
    return pd.DataFrame(rows)


def patching_summary(frame: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per layer and site: the mean change in null odds and the mean share of the gap restored,
    each with a bootstrap 95% interval over pairs, and the number of pairs."""
    rows = []
    for (layer, site), part in frame.groupby(["layer", "site"], sort=True):
        row = {"layer": layer, "site": site, "pairs": len(part)}
        for column in ("change", "restored"):
            values = part[column].dropna().to_numpy()
            low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed) if len(values) > 1 else (np.nan, np.nan)
            row.update({column: values.mean() if len(values) else np.nan, f"{column}_low": low, f"{column}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)
