"""Run an extractive QA model over a question table.

Windows of ``max_seq_length`` tokens overlap by ``doc_stride``; only the context is truncated,
and the fast tokenizer's offsets map tokens back to characters. Windows are sorted by length
and batched with dynamic padding, so short contexts do not pay for long ones; decoding is
:func:`xdanalysis.decoding.decode_question`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .data import HubUnreachableError, hub_reachable
from ._common import check_choice
from .decoding import DECODING_DEFAULTS, Window, check_decoding_settings, decode_question

__all__ = [
    "ModelLoadError",
    "model_problem",
    "load_qa_model",
    "max_sequence_length",
    "Windows",
    "WindowOutput",
    "prepare_windows",
    "forward_windows",
    "batch_tensors",
    "eager_attention",
    "run_windows",
    "decode_windows",
    "length_batches",
    "predict_table",
    "token_lengths",
    "DEFAULT_MODEL",
    "DEVICES",
    "DTYPES",
    "ENGINES",
    "resolve_device",
    "resolve_dtype",
    "fast_bfloat16",
    "model_device_dtype",
    "predict_chunk",
]

DEFAULT_MODEL = "nbroad/xdistil-l12-h384-squad2"


class ModelLoadError(ValueError):
    """A checkpoint that cannot serve as an extractive QA model (names the checkpoint and why)."""


def _looks_local(name: str) -> bool:
    return os.path.exists(name) or name.startswith((".", os.sep, "~")) or name.count("/") > 1


def model_problem(name_or_path, *, revision: str | None = None) -> str | None:
    """Why ``name_or_path`` cannot be loaded here, or None when it can be tried: a local path that
    is missing or not a model directory, or a Hub id neither cached nor reachable (checked in
    seconds, without downloading anything)."""
    import transformers

    name = os.fspath(name_or_path)
    if _looks_local(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            return f"{name}: no such model directory"
        if not (path / "config.json").exists():
            return f"{name}: not a model directory (no config.json)"
        return None
    try:  # the Hub cache, if it already holds the checkpoint
        transformers.AutoConfig.from_pretrained(name, local_files_only=True, **({"revision": revision} if revision else {}))
        return None
    except (OSError, ValueError):
        pass
    if hub_reachable():
        return None
    return (f"Model {name!r} is not a local directory, is not in the Hugging Face cache, and the Hub "
            "cannot be reached. Point at a local checkpoint instead (a directory with config.json, the "
            "weights and the tokenizer files), e.g. --model ../shared/models/minilm-l6-squad2-demo, "
            "or download it where the Hub is reachable (huggingface-cli download "
            f"{name} --local-dir DIR) and pass --model DIR.")


def require_model(name: str, *, revision: str | None = None) -> None:
    """Raise :func:`model_problem`'s message when the model cannot be had: a ``ModelLoadError`` for
    a local path, a ``HubUnreachableError`` (which says how to point at local files) for a Hub id."""
    problem = model_problem(name, revision=revision)
    if problem:
        raise (ModelLoadError if _looks_local(name) else HubUnreachableError)(problem)


DEVICES = ["auto", "cpu", "cuda", "mps"]
DTYPES = ["auto", "float32", "bfloat16", "float16"]
ENGINES = ["local", "ray"]  # ray: xdanalysis.scale


def resolve_device(device: str = "auto") -> str:
    """The device to run on: ``"auto"`` is CUDA if there is one, then Apple's MPS, then the CPU;
    a device that is asked for and absent is an error (never a silent fallback).

    >>> resolve_device("cpu")
    'cpu'
    """
    check_choice("device", device, DEVICES)
    if device == "cpu":
        return device  # without importing torch: a finished run is checked on every reuse
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU here (torch "
                         f"{torch.__version__}); use --device cpu or auto")
    if device == "mps" and not mps:
        raise ValueError("device 'mps' asked for, but this machine has no Apple MPS; use --device cpu or auto")
    return device


def fast_bfloat16(device: str) -> bool:
    """Whether bf16 arithmetic is fast on ``device``: a CUDA GPU that supports it, or a CPU with
    AMX or AVX512-BF16 (read from /proc/cpuinfo); elsewhere bf16 is emulated and slower than fp32.

    >>> fast_bfloat16("mps")
    False
    """
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    flags = _cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _cpu_flags() -> set:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return {flag for line in handle if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def resolve_dtype(dtype: str = "float32", device: str = "cpu") -> str:
    """The dtype to run in: ``"auto"`` is bfloat16 where :func:`fast_bfloat16` says so, else
    float32 (the official figures are fp32, so float32 is the default everywhere). float16 is
    refused on a CPU, where torch does not run it fast.

    >>> resolve_dtype("auto", "mps")
    'float32'
    """
    check_choice("dtype", dtype, DTYPES)
    if dtype == "auto":
        return "bfloat16" if fast_bfloat16(device) else "float32"
    if dtype == "float16" and device == "cpu":
        raise ValueError("dtype float16 on the CPU: torch runs it slowly or not at all; use bfloat16 (fast on CPUs "
                         "with AMX or AVX512-BF16) or float32")
    return dtype


def model_device_dtype(model) -> tuple[str, str]:
    """Where a loaded model is and in which dtype: ``("cpu", "float32")``, ``("cuda", "bfloat16")``..."""
    parameter = next(model.parameters())
    return parameter.device.type, str(parameter.dtype).replace("torch.", "")


def load_qa_model(
    name_or_path,
    *,
    allow_random_head: bool = False,
    attn_implementation: str | None = None,
    revision: str | None = None,
    with_info: bool = False,
    device: str = "auto",
    dtype: str = "float32",
):
    """Load ``(model, tokenizer)`` for extractive QA from a Hub id or a local directory, on
    ``device`` in ``dtype`` (see :func:`resolve_device` and :func:`resolve_dtype`).

    Refuses a checkpoint whose QA head would be freshly initialised (a plain encoder) unless
    ``allow_random_head=True``, and a checkpoint without a fast tokenizer (offsets are needed).
    When the Hub cannot be reached, fails in seconds and says how to point at local files.
    ``with_info=True`` returns ``(model, tokenizer, info)``, ``info["random_head"]`` telling
    whether the QA head is untrained (views say so on screen); the model itself is not marked.

    Example::

        model, tokenizer = load_qa_model("../shared/models/minilm-l6-squad2-demo")
    """
    import transformers
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    name = os.fspath(name_or_path)
    kwargs = {}
    if revision:
        kwargs["revision"] = revision
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    require_model(name, revision=revision)
    if _looks_local(name):
        name = str(Path(name).expanduser())
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # we report a missing head ourselves, clearly
    try:
        model, info = AutoModelForQuestionAnswering.from_pretrained(name, output_loading_info=True, **kwargs)
    except ValueError as exc:
        raise ModelLoadError(f"{name}: this architecture has no extractive question-answering head "
                             f"in transformers ({exc})") from exc
    finally:
        transformers.logging.set_verbosity(verbosity)
    prefix = f"{model.base_model_prefix}."
    fresh = [k for k in info.get("missing_keys", []) if not k.startswith(prefix)]  # head weights
    if fresh and not allow_random_head:
        raise ModelLoadError(
            f"{name}: the checkpoint has no trained question-answering head (freshly initialised: "
            f"{', '.join(sorted(fresh))}); its answers would be random. Use a checkpoint fine-tuned for "
            "extractive QA, or pass allow_random_head=True (CLI: --allow-random-head) for a demo or a test."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **({"revision": revision} if revision else {}))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{name}: no usable tokenizer ({exc})") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{name}: the tokenizer is not a fast tokenizer; offsets (needed to map answers "
                             "back to the text) require one (a tokenizer.json file)")
    target_device = resolve_device(device)
    target_dtype = resolve_dtype(dtype, target_device)
    import torch

    model.to(device=target_device, dtype=getattr(torch, target_dtype))
    model.eval()
    if with_info:
        return model, tokenizer, {"random_head": bool(fresh), "untrained_weights": sorted(fresh), "name": name,
                                  "device": target_device, "dtype": target_dtype}
    return model, tokenizer


# Models whose learned position table starts after the padding index (RoBERTa's family).
_POSITION_OFFSET_TYPES = {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod",
                          "roberta-prelayernorm", "bart", "mbart"}


def max_sequence_length(model) -> int | None:
    """The longest window ``model`` can take (its position table), or None when unbounded
    (relative positions, e.g. XLNet).

    Example::

        max_sequence_length(model)   # 512 for BERT and RoBERTa
    """
    config = model.config
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    if getattr(config, "model_type", "") in _POSITION_OFFSET_TYPES:
        limit -= (getattr(config, "pad_token_id", 1) or 1) + 1
    return limit


@dataclass
class Windows:
    """Every window of a question table, as the tokenizer made them (one entry per window).

    ``input_ids`` (and ``token_type_ids`` when the model has them) are lists of token ids;
    ``offsets`` int arrays ``[tokens, 2]`` of character offsets into the context (``-1`` outside
    it); ``kinds`` per token ``"special"``, ``"question"`` or ``"context"``; ``question_offsets``
    character offsets into the (stripped, possibly truncated) question, ``-1`` outside it;
    ``question_index`` the row position in the table; ``cls_index`` where [CLS] sits (first for
    BERT, last for XLNet); ``truncated`` the row positions whose question was cut to
    ``max_query_length`` tokens. ``windows["input_ids"]`` works as well as ``windows.input_ids``.
    """

    input_ids: list
    offsets: list
    kinds: list
    question_offsets: list
    question_index: list
    cls_index: list
    pad_token_id: int = 0
    token_type_ids: list | None = None
    truncated: list = field(default_factory=list)
    questions: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, name: str):
        return getattr(self, name)

    def __contains__(self, name: str) -> bool:
        return getattr(self, name, None) is not None

    def get(self, name: str, default=None):
        value = getattr(self, name, None)
        return default if value is None else value

    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])


def _question_budget(tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int) -> int:
    """How many question tokens a window can hold and still leave ``doc_stride + 1`` context tokens."""
    room = max_seq_length - tokenizer.num_special_tokens_to_add(pair=True) - doc_stride - 1
    if room < 1:
        raise ValueError(f"max_seq_length {max_seq_length} leaves no room for the question: with doc_stride "
                         f"{doc_stride} and the model's special tokens, a window needs max_seq_length > "
                         f"{max_seq_length - room + 1}")
    return min(max_query_length, room)


def _truncate_questions(questions: list, tokenizer, budget: int) -> tuple[list, list]:
    """Cut questions longer than ``budget`` tokens at a token boundary; returns (questions, cut rows)."""
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    cut = []
    for i, (ids, offsets) in enumerate(zip(encoded["input_ids"], encoded["offset_mapping"])):
        if len(ids) <= budget:
            continue
        keep = budget
        while keep > 0:  # re-tokenising a prefix can give a different count: shrink until it fits
            text = questions[i][: offsets[keep - 1][1]]
            if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= budget:
                break
            keep -= 1
        questions[i] = text
        cut.append(i)
    return questions, cut


def prepare_windows(table: pd.DataFrame, tokenizer, *, max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
                    doc_stride: int = DECODING_DEFAULTS["doc_stride"],
                    max_query_length: int = DECODING_DEFAULTS["max_query_length"]) -> Windows:
    """Tokenise every question into overlapping windows (see :class:`Windows`).

    Only the context is split into windows; a question longer than ``max_query_length`` tokens
    (or than a window leaves room for) is cut to fit, as the original SQuAD scripts do, and its
    row is listed in ``truncated``, so one long question never stops a run.

    Example::

        windows = prepare_windows(load_squad(path, limit=4), tokenizer, max_seq_length=128, doc_stride=32)
        len(windows), windows.cls_index[0]
    """
    check_decoding_settings(n_best_size=1, max_answer_length=1, max_seq_length=max_seq_length,
                            doc_stride=doc_stride, max_query_length=max_query_length)
    if tokenizer.cls_token_id is None:
        raise ValueError(f"{getattr(tokenizer, 'name_or_path', 'the tokenizer')}: no [CLS] token, so there is no "
                         "null (no-answer) score; extractive SQuAD 2.0 models need one")
    pad_on_right = tokenizer.padding_side == "right"
    budget = _question_budget(tokenizer, max_seq_length, doc_stride, max_query_length)
    questions = [str(q).lstrip() for q in table["question"]]  # leading spaces waste window room
    questions, truncated = _truncate_questions(questions, tokenizer, budget)
    contexts = list(table["context"])
    encoded = tokenizer(
        questions if pad_on_right else contexts,
        contexts if pad_on_right else questions,
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    context_id = 1 if pad_on_right else 0
    offsets, question_offsets, kinds, cls_index = [], [], [], []
    for i, mapping in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded.sequence_ids(i)
        array = np.array(mapping, dtype=np.int64).reshape(-1, 2)
        window_kinds = ["special" if s is None else ("context" if s == context_id else "question")
                        for s in sequence_ids]
        is_context = np.array([k == "context" for k in window_kinds], dtype=bool)
        is_question = np.array([k == "question" for k in window_kinds], dtype=bool)
        context_offsets, q_offsets = array.copy(), array.copy()
        context_offsets[~is_context] = -1
        q_offsets[~is_question] = -1
        offsets.append(context_offsets)
        question_offsets.append(q_offsets)
        kinds.append(window_kinds)
        ids = encoded["input_ids"][i]
        try:
            cls_index.append(ids.index(tokenizer.cls_token_id))
        except ValueError:
            raise ValueError(f"{getattr(tokenizer, 'name_or_path', 'the tokenizer')}: a window holds no "
                             f"{tokenizer.cls_token} token; cannot take the null score") from None
    return Windows(
        input_ids=encoded["input_ids"],
        offsets=offsets,
        kinds=kinds,
        question_offsets=question_offsets,
        question_index=list(encoded["overflow_to_sample_mapping"]),
        cls_index=cls_index,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        token_type_ids=encoded["token_type_ids"] if "token_type_ids" in encoded else None,
        truncated=truncated,
        questions=questions,
    )


def length_batches(lengths, batch_size: int = 32, max_batch_tokens: int | None = 2048) -> list[np.ndarray]:
    """Window indices grouped into batches, longest windows first.

    A batch holds at most ``batch_size`` windows and, when ``max_batch_tokens`` is set, at most
    that many tokens once padded to its longest window (always at least one window). On a CPU,
    batches of ~2k tokens keep the feed-forward activations in cache; bigger ones run slower.

    >>> [b.tolist() for b in length_batches([5, 9, 7, 3], batch_size=2, max_batch_tokens=None)]
    [[1, 2], [0, 3]]
    >>> [b.tolist() for b in length_batches([5, 9, 7, 3], batch_size=4, max_batch_tokens=18)]
    [[1, 2], [0, 3]]
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches, current = [], []
    for index in order:
        width = lengths[current[0]] if current else lengths[index]
        too_many = len(current) >= batch_size
        too_long = max_batch_tokens is not None and (len(current) + 1) * width > max_batch_tokens
        if current and (too_many or too_long):
            batches.append(np.array(current))
            current = []
        current.append(index)
    if current:
        batches.append(np.array(current))
    return batches


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
    ``end_logits`` (float32 ``[tokens]``), and ``attentions`` (``[layers, heads, tokens, tokens]``)
    when asked for."""

    start_logits: np.ndarray
    end_logits: np.ndarray
    attentions: np.ndarray | None = None


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


def forward_windows(model, windows: Windows, indices, *, attentions: bool = False) -> list[WindowOutput]:
    """The one forward pass everything model-facing shares: the windows at ``indices`` in one
    batch, padded on the right to the longest, moved to the model's device; results come back on
    the CPU as numpy, in the order of ``indices``.

    Example::

        first = forward_windows(model, windows, [0])[0]
        first.start_logits[windows.cls_index[0]]
    """
    import torch

    indices = [int(i) for i in indices]
    if not indices:
        return []
    lengths = [len(windows.input_ids[i]) for i in indices]
    inputs = batch_tensors(windows, indices, device=next(model.parameters()).device)
    with torch.inference_mode():
        if attentions:
            with eager_attention(model):
                output = model(**inputs, output_attentions=True)
        else:
            output = model(**inputs)
    start = output.start_logits.float().cpu().numpy()
    end = output.end_logits.float().cpu().numpy()
    maps = None
    if attentions:
        maps = torch.stack([layer.float() for layer in output.attentions], dim=1).cpu().numpy()  # [b, L, H, s, s]
    return [WindowOutput(start[row, :n].copy(), end[row, :n].copy(),
                         None if maps is None else maps[row, :, :, :n, :n].copy())
            for row, n in enumerate(lengths)]


def run_windows(model, windows: Windows, *, batch_size: int = 32, progress: bool = True, desc: str = "windows",
                max_batch_tokens: int | None = 2048) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start and end logits for every window, each trimmed to the window's real length.

    Windows run longest first in batches (see :func:`length_batches`) through
    :func:`forward_windows`, each padded only to its own longest window; results come back in
    the input order.
    """
    lengths = windows.lengths()
    results: list = [None] * len(lengths)
    bar = tqdm(total=len(lengths), desc=desc, unit="win", disable=not progress, leave=False)
    for batch in length_batches(lengths, batch_size, max_batch_tokens):
        for index, output in zip(batch, forward_windows(model, windows, batch)):
            results[index] = (output.start_logits, output.end_logits)
        bar.update(len(batch))
    bar.close()
    return results


def decode_windows(table: pd.DataFrame, windows: Windows, logits, *,
                   n_best_size: int = DECODING_DEFAULTS["n_best_size"],
                   max_answer_length: int = DECODING_DEFAULTS["max_answer_length"],
                   null_score_diff_threshold: float = DECODING_DEFAULTS["null_score_diff_threshold"]) -> list[dict]:
    """Group windows by question and decode each question (see :func:`decode_question`)."""
    per_question: list[list[Window]] = [[] for _ in range(len(table))]
    for offsets, question_index, cls, (start, end) in zip(windows.offsets, windows.question_index,
                                                           windows.cls_index, logits):
        per_question[question_index].append(Window(offsets, start, end, cls))
    contexts = list(table["context"])
    return [
        decode_question(contexts[i], per_question[i], n_best_size=n_best_size,
                        max_answer_length=max_answer_length, null_score_diff_threshold=null_score_diff_threshold)
        for i in range(len(table))
    ]


def token_lengths(table: pd.DataFrame, tokenizer) -> pd.DataFrame:
    """Model-token lengths of each question, context and first gold answer (NaN when unanswerable)."""
    def count(texts):
        encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    answers = [texts[0] if len(texts) else "" for texts in table["answer_texts"]]
    answer_tokens = np.array(count(answers), dtype=float)
    answer_tokens[[len(t) == 0 for t in table["answer_texts"]]] = np.nan
    return pd.DataFrame(
        {
            "question_tokens": count(str(q).lstrip() for q in table["question"]),
            "context_tokens": count(table["context"]),
            "answer_tokens": answer_tokens,
        },
        index=table.index,
    )


def predict_table(model, tokenizer, table: pd.DataFrame, *,
                  max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
                  doc_stride: int = DECODING_DEFAULTS["doc_stride"],
                  max_query_length: int = DECODING_DEFAULTS["max_query_length"],
                  n_best_size: int = DECODING_DEFAULTS["n_best_size"],
                  max_answer_length: int = DECODING_DEFAULTS["max_answer_length"],
                  null_score_diff_threshold: float = DECODING_DEFAULTS["null_score_diff_threshold"],
                  batch_size: int = 32, progress: bool = True) -> tuple[pd.DataFrame, list[list[dict]]]:
    """Predict every question of ``table``; returns ``(predictions, nbest)``.

    ``predictions`` has one row per question (same index as ``table``) with ``answer``,
    ``answer_start``, ``answer_end``, ``best_span_text``, ``best_span_score``, ``null_score``,
    ``null_odds``, ``n_windows``, ``best_window``, ``question_truncated``; ``nbest`` holds each
    question's n-best list.

    Example::

        predictions, nbest = predict_table(model, tokenizer, load_squad(path, limit=8))
    """
    check_decoding_settings(n_best_size=n_best_size, max_answer_length=max_answer_length,
                            max_seq_length=max_seq_length, doc_stride=doc_stride, max_query_length=max_query_length)
    windows = prepare_windows(table, tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride,
                              max_query_length=max_query_length)
    logits = run_windows(model, windows, batch_size=batch_size, progress=progress)
    decoded = decode_windows(table, windows, logits, n_best_size=n_best_size, max_answer_length=max_answer_length,
                             null_score_diff_threshold=null_score_diff_threshold)
    nbest = [d.pop("nbest") for d in decoded]
    predictions = pd.DataFrame(decoded, index=table.index)
    predictions["question_truncated"] = np.isin(np.arange(len(table)), windows.truncated)
    return predictions, nbest


def predict_chunk(model, tokenizer, part: pd.DataFrame, *, decoding: dict, batch_size: int = 32):
    """One chunk of a run (see :mod:`xdanalysis.runs`), as both engines compute it: the questions'
    predictions, token lengths and n-best lists (as JSON) in one frame, and the seconds it took.
    ``decoding`` holds the keywords of :func:`predict_table`."""
    import json
    import time

    started = time.perf_counter()
    predictions, nbest = predict_table(model, tokenizer, part, batch_size=batch_size, progress=False, **decoding)
    seconds = time.perf_counter() - started
    lengths = token_lengths(part, tokenizer)
    lengths["prediction_tokens"] = [len(ids) for ids in tokenizer(
        list(predictions["answer"]), add_special_tokens=False)["input_ids"]]
    frame = pd.concat([part[["id"]].reset_index(drop=True), predictions.reset_index(drop=True),
                       lengths.reset_index(drop=True)], axis=1)
    frame["nbest"] = [json.dumps(n, ensure_ascii=False) for n in nbest]
    return frame, seconds
