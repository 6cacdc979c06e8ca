"""Inside the model, layer by layer: the QA head read at every layer (logit lens) or through a
linear probe per layer fitted, encoder frozen, to the model's own final distributions (tuned
lens), and where the final answer and the decision to abstain form. All on the one windowed
forward pass, for any Hugging Face extractive-QA model with a ``qa_outputs`` head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.common import check_choice, progress_bar
from ..core.metrics import question_scores
from ..core.settings import DecodingSettings, WindowSettings
from ..model.forward import forward_windows
from ..model.predict import decode_windows
from ..model.windows import Windows, length_batches, prepare_windows

__all__ = ['LENSES', 'LayerLens', 'TunedLens', 'fit_tuned_lens', 'layer_lens', 'qa_head']

LENSES = ["logit", "tuned"]


def qa_head(model):
    """The model's extractive-QA head (``qa_outputs``: hidden size -> start and end), or a clear error."""
    head = getattr(model, "qa_outputs", None)
    if head is None or getattr(head, "out_features", None) != 2:
        raise ValueError(f"{type(model).__name__} has no extractive-QA head (a qa_outputs layer giving start and end "
                         "logits): the layer lens needs an AutoModelForQuestionAnswering checkpoint")
    return head


@dataclass(frozen=True)
class TunedLens:
    """One linear start/end probe per layer (``weight`` ``[layers + 1, hidden, 2]``, ``bias``
    ``[layers + 1, 2]``), fitted on ``windows`` training windows with the encoder frozen."""

    weight: np.ndarray
    bias: np.ndarray
    windows: int
    epochs: int


def _head_weights(model) -> tuple[np.ndarray, np.ndarray]:
    head = qa_head(model)
    layers = model.config.num_hidden_layers + 1
    weight = head.weight.detach().float().cpu().numpy().T  # [hidden, 2]
    bias = head.bias.detach().float().cpu().numpy()
    return np.repeat(weight[None], layers, axis=0), np.repeat(bias[None], layers, axis=0)


def _states(model, windows: Windows, *, batch_size: int, progress: bool, desc: str):
    """``(window index, hidden states [layers + 1, tokens, hidden])`` for every window, batch by batch."""

    bar = progress_bar(total=len(windows), desc=desc, unit="win", disable=not progress, leave=False)
    for batch in length_batches(windows.lengths(), batch_size):
        for index, output in zip(batch, forward_windows(model, windows, batch, hidden_states=True)):
            yield int(index), output.hidden_states
        bar.update(len(batch))
    bar.close()


def fit_tuned_lens(model, tokenizer, table: pd.DataFrame, *, windowing: WindowSettings = WindowSettings(),
                   epochs: int = 3, learning_rate: float = 1e-3, max_windows: int = 400, seed: int = 0,
                   progress: bool = True) -> TunedLens:
    """Fit a tuned lens (Belrose et al. 2023): per layer, a linear start/end probe, initialised from
    the model's head, trained to reproduce the model's own final start and end distributions (the
    KL from the final layer's softmax to the probe's) on ``table``'s windows — training-article
    questions, never the ones it will be read on — while the encoder stays frozen. No gold labels: the
    lens asks what each layer already knows of the model's answer. One forward pass caches the
    states (float16, at most ``max_windows`` windows), then ``epochs`` passes of Adam.
    """
    import torch

    windows = prepare_windows(table, tokenizer, windowing)
    keep = np.random.default_rng(seed).permutation(len(windows))[:max_windows]
    picked = set(keep.tolist())
    cached = {i: torch.from_numpy(s.astype(np.float16)) for i, s in
              _states(model, windows, batch_size=16, progress=progress, desc="tuned lens: states") if i in picked}
    head_weight, head_bias = _head_weights(model)
    # one probe per layer below the last; the last layer's "probe" is the head itself, the target
    weight, bias = (torch.tensor(a[:-1], requires_grad=True) for a in (head_weight, head_bias))
    final_weight, final_bias = torch.from_numpy(head_weight[-1]), torch.from_numpy(head_bias[-1])
    optimiser = torch.optim.Adam([weight, bias], lr=learning_rate)
    generator = np.random.default_rng(seed + 1)
    for _ in range(epochs):
        for i in generator.permutation(keep):
            states = cached[int(i)].float()
            with torch.no_grad():  # the model's own final distributions: what every layer's probe should give
                final = torch.softmax(states[-1] @ final_weight + final_bias, dim=0)  # [tokens, 2]
            logits = torch.einsum("lnd,ldk->lnk", states[:-1], weight) + bias[:, None, :]
            loss = sum(torch.nn.functional.cross_entropy(logits[:, :, k], final[:, k].expand(len(logits), -1))
                       for k in range(2))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return TunedLens(weight=np.concatenate([weight.detach().numpy(), head_weight[-1:]]),
                     bias=np.concatenate([bias.detach().numpy(), head_bias[-1:]]), windows=len(keep), epochs=epochs)


@dataclass
class LayerLens:
    """The result of :func:`layer_lens`. ``per_layer``: one row per layer (0 = the embeddings) with
    EM/F1 overall, answerable (HasAns) and unanswerable (NoAns), ``null_accuracy`` (abstained exactly
    where there is no answer), ``answered`` and ``final_start_rank`` (mean rank of the final answer's
    start token); ``per_question``: ``id``, ``layer``, ``answer``, ``abstained``, ``null_odds``,
    ``exact``, ``f1``; ``formed``: per question, the layer from which its final answer
    (``answer_layer``) and its decision to answer or abstain (``decision_layer``) appear and stay."""

    lens: str
    per_layer: pd.DataFrame
    per_question: pd.DataFrame
    formed: pd.DataFrame
    windows: Windows
    logits: list  # per layer, per window: (start, end) float32 arrays
    table: pd.DataFrame
    tokens: list  # per window, its tokens as text

    def window_of(self, qid: str) -> int:
        """The index of question ``qid``'s first window."""
        rows = np.flatnonzero(self.table["id"].to_numpy() == qid)
        if not len(rows):
            raise KeyError(f"no question with id {qid!r} in this lens")
        return self.windows.question_index.index(int(rows[0]))

    def start_distributions(self, qid: str, which: str = "start") -> pd.DataFrame:
        """For one question's first window: the softmax of the ``which`` ("start" or "end") logits
        over its tokens at every layer, one row per layer, the tokens' positions as columns
        (``tokens[window_of(qid)]`` names them)."""
        from ..core.stats import softmax

        check_choice("which", which, ["start", "end"])
        window, k = self.window_of(qid), 0 if which == "start" else 1
        return pd.DataFrame([softmax(self.logits[layer][window][k]) for layer in range(len(self.logits))])


def _lens_weights(model, lens: str, tuned: TunedLens | None):
    check_choice("lens", lens, LENSES)
    if lens == "logit":
        return _head_weights(model)
    if tuned is None:
        raise ValueError("lens='tuned' needs tuned=fit_tuned_lens(model, tokenizer, training questions): a probe per "
                         "layer fitted on questions the lens is not read on")
    if len(tuned.weight) != model.config.num_hidden_layers + 1:
        raise ValueError(f"this tuned lens has {len(tuned.weight) - 1} layers, the model {model.config.num_hidden_layers}")
    return tuned.weight, tuned.bias


def _layer_logits(model, windows: Windows, weight, bias, *, exact_head: bool, batch_size: int, progress: bool):
    """Per layer, per window: the lens's start and end logits over the window's tokens."""
    import torch

    head = qa_head(model)
    layers = len(weight)
    logits = [[None] * len(windows) for _ in range(layers)]
    for index, states in _states(model, windows, batch_size=batch_size, progress=progress, desc="layer lens"):
        if exact_head:  # the model's own head, as the model applies it: the last layer is the model's logits
            with torch.inference_mode():
                values = head(torch.from_numpy(states)).numpy()
        else:
            values = np.einsum("lnd,ldk->lnk", states, weight) + bias[:, None, :]
        for layer in range(layers):
            logits[layer][index] = (values[layer, :, 0].astype(np.float32), values[layer, :, 1].astype(np.float32))
    return logits


def _start_ranks(decoded_final: list, windows: Windows, logits_at: list) -> float:
    """Mean rank (1 = the top) of the final answer's start token among its window's context
    tokens under one layer's start logits, over the questions answered at the last layer."""
    ranks = []
    by_question: dict[int, list[int]] = {}
    for w, q in enumerate(windows.question_index):
        by_question.setdefault(q, []).append(w)
    for q, final in enumerate(decoded_final):
        if final["answer"] == "":
            continue
        w = by_question[q][final["best_window"]]
        offsets = windows.offsets[w]
        token = np.flatnonzero(offsets[:, 0] == final["answer_start"])
        if not len(token):
            continue
        context = offsets[:, 0] >= 0
        start = logits_at[w][0]
        ranks.append(1 + int((start[context] > start[token[0]]).sum()))
    return float(np.mean(ranks)) if ranks else np.nan


def _formed_at(per_question: pd.DataFrame, layers: int) -> pd.DataFrame:
    """The first layer from which each question's answer, and its abstain decision, equal the final ones."""
    answers = per_question.pivot(index="id", columns="layer", values="answer")
    abstained = per_question.pivot(index="id", columns="layer", values="abstained")

    def settle(grid: pd.DataFrame) -> np.ndarray:
        same = grid.eq(grid[layers - 1], axis=0).to_numpy()[:, ::-1]
        stays = np.cumprod(same, axis=1).sum(axis=1)  # how many last layers agree with the final one
        return layers - stays

    return pd.DataFrame({"id": answers.index, "final_answer": answers[layers - 1].to_numpy(),
                         "answer_layer": settle(answers), "decision_layer": settle(abstained)})


def layer_lens(model, tokenizer, table: pd.DataFrame, *, lens: str = "logit", tuned: TunedLens | None = None,
               windowing: WindowSettings = WindowSettings(), decoding: DecodingSettings = DecodingSettings(),
               batch_size: int = 16, progress: bool = True) -> LayerLens:
    """Decode every question at every layer: the QA head applied to each layer's hidden states
    (``lens="logit"``; the last layer is the model itself) or the per-layer probes of a
    :func:`fit_tuned_lens` (``lens="tuned"``), with the run's windowing and decoding.

    Example::

        result = layer_lens(model, tokenizer, run.table, windowing=run.windowing, decoding=run.decoding)
        result.per_layer[["layer", "HasAns_F1", "NoAns_F1"]], result.formed
    """
    weight, bias = _lens_weights(model, lens, tuned)
    windows = prepare_windows(table, tokenizer, windowing)
    logits = _layer_logits(model, windows, weight, bias, exact_head=lens == "logit", batch_size=batch_size,
                           progress=progress)
    gold = dict(zip(table["id"], table["answer_texts"]))
    has = np.array([len(g) > 0 for g in table["answer_texts"]])
    decoded = [decode_windows(table, windows, logits[layer], decoding=decoding) for layer in range(len(logits))]
    rows, questions = [], []
    for layer, answers in enumerate(decoded):
        predicted = {qid: d["answer"] for qid, d in zip(table["id"], answers)}
        exact, f1 = question_scores(gold, predicted)
        em, f = np.array([exact[q] for q in table["id"]]), np.array([f1[q] for q in table["id"]])
        abstained = np.array([d["answer"] == "" for d in answers])
        rows.append({"layer": layer, "EM": 100 * em.mean(), "F1": 100 * f.mean(),
                     "HasAns_EM": 100 * em[has].mean() if has.any() else np.nan,
                     "HasAns_F1": 100 * f[has].mean() if has.any() else np.nan,
                     "NoAns_EM": 100 * em[~has].mean() if (~has).any() else np.nan,
                     "NoAns_F1": 100 * f[~has].mean() if (~has).any() else np.nan,
                     "null_accuracy": 100 * (abstained == ~has).mean(), "answered": 100 * (~abstained).mean(),
                     "final_start_rank": _start_ranks(decoded[-1], windows, logits[layer])})
        questions.append(pd.DataFrame({"id": table["id"].to_numpy(), "layer": layer,
                                       "answer": [d["answer"] for d in answers], "abstained": abstained,
                                       "null_odds": [d["null_odds"] for d in answers], "exact": em, "f1": f}))
    per_question = pd.concat(questions, ignore_index=True)
    return LayerLens(lens=lens, per_layer=pd.DataFrame(rows), per_question=per_question,
                     formed=_formed_at(per_question, len(logits)), windows=windows, logits=logits,
                     table=table.reset_index(drop=True),
                     tokens=[tokenizer.convert_ids_to_tokens(list(ids)) for ids in windows.input_ids])
