"""Run an extractive QA model over a question table.

Windows of ``max_seq_length`` tokens overlap by ``doc_stride``; only the context is truncated,
and the fast tokenizer's offsets map tokens back to characters. Windows are sorted by length
and batched with dynamic padding, so short contexts do not pay for long ones; decoding is
:func:`xdanalysis.decoding.decode_question`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .data import HubUnreachableError, hub_reachable
from .decoding import Window, decode_question

__all__ = [
    "ModelLoadError",
    "load_qa_model",
    "prepare_windows",
    "run_windows",
    "length_batches",
    "predict_table",
    "token_lengths",
    "DEFAULT_MODEL",
]

DEFAULT_MODEL = "nbroad/xdistil-l12-h384-squad2"


class ModelLoadError(ValueError):
    """A checkpoint that cannot serve as an extractive QA model (names the checkpoint and why)."""


def _looks_local(name: str) -> bool:
    return os.path.exists(name) or name.startswith((".", os.sep, "~")) or name.count("/") > 1


def load_qa_model(
    name_or_path,
    allow_random_head: bool = False,
    attn_implementation: str | None = None,
    revision: str | None = None,
):
    """Load ``(model, tokenizer)`` for extractive QA from a Hub id or a local directory.

    Refuses a checkpoint whose QA head would be freshly initialised (a plain encoder) unless
    ``allow_random_head=True``, and a checkpoint without a fast tokenizer (offsets are needed).
    When the Hub cannot be reached, fails in seconds and says how to point at local files.

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
    if _looks_local(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise ModelLoadError(f"{name}: no such model directory")
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{name}: not a model directory (no config.json)")
        name = str(path)
    else:
        try:  # the Hub cache, if it already holds the checkpoint
            transformers.AutoConfig.from_pretrained(name, local_files_only=True, **({"revision": revision} if revision else {}))
        except OSError:
            if not hub_reachable():
                raise HubUnreachableError(
                    f"Model {name!r} is not a local directory, is not in the Hugging Face cache, and the Hub "
                    "cannot be reached. Point at a local checkpoint instead (a directory with config.json, the "
                    "weights and the tokenizer files), e.g. --model ../shared/models/minilm-l6-squad2-demo, "
                    "or download it where the Hub is reachable (huggingface-cli download "
                    f"{name} --local-dir DIR) and pass --model DIR."
                ) from None
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
    # Views and notebooks say on screen when the QA head is untrained.
    model.xdanalysis_random_head = bool(fresh)
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
    model.eval()
    return model, tokenizer


def prepare_windows(table: pd.DataFrame, tokenizer, max_seq_length: int = 384, doc_stride: int = 128) -> dict:
    """Tokenise every question into overlapping windows.

    Returns a dict of lists, one entry per window: ``input_ids``, ``token_type_ids`` (when the
    model has them), ``offsets`` (int array, ``-1`` outside the context) and ``question_index``
    (row position in ``table``).
    """
    if doc_stride >= max_seq_length:
        raise ValueError(f"doc_stride ({doc_stride}) must be smaller than max_seq_length ({max_seq_length})")
    pad_on_right = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in table["question"]]  # leading spaces waste window room
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
    offsets = []
    for i, mapping in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded.sequence_ids(i)
        array = np.array(mapping, dtype=np.int64).reshape(-1, 2)
        outside = np.array([s != context_id for s in sequence_ids])
        array[outside] = -1
        offsets.append(array)
    windows = {
        "input_ids": encoded["input_ids"],
        "offsets": offsets,
        "question_index": list(encoded["overflow_to_sample_mapping"]),
    }
    if "token_type_ids" in encoded:
        windows["token_type_ids"] = encoded["token_type_ids"]
    return windows


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


def run_windows(model, windows: dict, batch_size: int = 32, pad_token_id: int = 0, progress: bool = True,
                desc: str = "windows", max_batch_tokens: int | None = 2048) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start and end logits for every window, each trimmed to the window's real length.

    Windows run longest first in batches (see :func:`length_batches`), each padded only to its
    own longest window; results come back in the input order.
    """
    import torch

    lengths = np.array([len(ids) for ids in windows["input_ids"]])
    results: list = [None] * len(lengths)
    has_types = "token_type_ids" in windows
    device = next(model.parameters()).device
    bar = tqdm(total=len(lengths), desc=desc, unit="win", disable=not progress, leave=False)
    with torch.inference_mode():
        for batch in length_batches(lengths, batch_size, max_batch_tokens):
            width = int(lengths[batch].max())
            ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            types = torch.zeros((len(batch), width), dtype=torch.long) if has_types else None
            for row, index in enumerate(batch):
                n = lengths[index]
                ids[row, :n] = torch.as_tensor(windows["input_ids"][index])
                mask[row, :n] = 1
                if has_types:
                    types[row, :n] = torch.as_tensor(windows["token_type_ids"][index])
            inputs = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
            if has_types:
                inputs["token_type_ids"] = types.to(device)
            output = model(**inputs)
            start = output.start_logits.float().cpu().numpy()
            end = output.end_logits.float().cpu().numpy()
            for row, index in enumerate(batch):
                n = lengths[index]
                results[index] = (start[row, :n].copy(), end[row, :n].copy())
            bar.update(len(batch))
    bar.close()
    return results


def decode_windows(table: pd.DataFrame, windows: dict, logits, n_best_size: int = 20,
                   max_answer_length: int = 30, null_score_diff_threshold: float = 0.0) -> list[dict]:
    """Group windows by question and decode each question (see :func:`decode_question`)."""
    per_question: list[list[Window]] = [[] for _ in range(len(table))]
    for offsets, question_index, (start, end) in zip(windows["offsets"], windows["question_index"], logits):
        per_question[question_index].append(Window(offsets, start, end))
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
            "question_tokens": count(q.lstrip() for q in table["question"]),
            "context_tokens": count(table["context"]),
            "answer_tokens": answer_tokens,
        },
        index=table.index,
    )


def predict_table(model, tokenizer, table: pd.DataFrame, max_seq_length: int = 384, doc_stride: int = 128,
                  n_best_size: int = 20, max_answer_length: int = 30, null_score_diff_threshold: float = 0.0,
                  batch_size: int = 32, progress: bool = True) -> tuple[pd.DataFrame, list[list[dict]]]:
    """Predict every question of ``table``; returns ``(predictions, nbest)``.

    ``predictions`` has one row per question (same index as ``table``) with ``answer``,
    ``answer_start``, ``answer_end``, ``best_span_text``, ``best_span_score``, ``null_score``,
    ``null_odds``, ``n_windows``, ``best_window``; ``nbest`` holds each question's n-best list.

    Example::

        predictions, nbest = predict_table(model, tokenizer, load_squad(path, limit=8))
    """
    windows = prepare_windows(table, tokenizer, max_seq_length, doc_stride)
    logits = run_windows(model, windows, batch_size=batch_size, pad_token_id=tokenizer.pad_token_id or 0,
                         progress=progress)
    decoded = decode_windows(table, windows, logits, n_best_size, max_answer_length, null_score_diff_threshold)
    nbest = [d.pop("nbest") for d in decoded]
    return pd.DataFrame(decoded, index=table.index), nbest
