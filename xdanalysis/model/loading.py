"""Loading an extractive QA model: Hub ids and local checkpoints, clear errors, fingerprints and
training records."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from ..core.common import check_choice, is_reference
from ..core.data import HubUnreachableError, hub_reachable
from ..core.settings import RUNTIMES, Int8Settings, OpenVINOSettings
from .checkpoint import transformers_bars
from .device import resolve_placement

__all__ = ['DEFAULT_MODEL', 'ModelLoadError', 'load_qa_model', 'looks_local', 'max_sequence_length', 'model_files', 'model_identity', 'model_problem', 'require_model', 'training_overlap', 'training_record', 'weights_fingerprint']


DEFAULT_MODEL = "nbroad/xdistil-l12-h384-squad2"


class ModelLoadError(ValueError):
    """A checkpoint that cannot serve as an extractive QA model (names the checkpoint and why)."""


def looks_local(name: str) -> bool:
    return os.path.exists(name) or name.startswith((".", os.sep, "~")) or name.count("/") > 1


def model_problem(name_or_path, *, revision: str | None = None, advice: bool = True) -> str | None:
    """Why ``name_or_path`` cannot be loaded here, or None when it can be tried: a local path that
    is missing or not a model directory, or a Hub id neither cached nor reachable (checked in
    seconds, without downloading anything). ``advice=False`` leaves out how to point at local
    files (for callers that give their own recipe)."""
    import transformers

    name = os.fspath(name_or_path)
    if looks_local(name):
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
    problem = (f"Model {name!r} is not a local directory, is not in the Hugging Face cache, and the Hub "
               "cannot be reached.")
    if not advice:
        return problem
    return (problem + " Point at a local checkpoint instead (a directory with config.json, the "
            "weights and the tokenizer files), e.g. --model ../shared/models/minilm-l6-squad2-demo, "
            "or download it where the Hub is reachable (huggingface-cli download "
            f"{name} --local-dir DIR) and pass --model DIR.")


def require_model(name: str, *, revision: str | None = None) -> None:
    """Raise :func:`model_problem`'s message when the model cannot be had: a ``ModelLoadError`` for
    a local path, a ``HubUnreachableError`` (which says how to point at local files) for a Hub id."""
    problem = model_problem(name, revision=revision)
    if problem:
        raise (ModelLoadError if looks_local(name) else HubUnreachableError)(problem)


def load_qa_model(
    name_or_path,
    *,
    allow_random_head: bool = False,
    attn_implementation: str | None = None,
    revision: str | None = None,
    with_info: bool = False,
    device: str = "auto",
    dtype: str = "float32",
    int8: Int8Settings = Int8Settings(),
    runtime: str = "torch",
    openvino: OpenVINOSettings = OpenVINOSettings(),
    calibration=None,
):
    """Load ``(model, tokenizer)`` for extractive QA from a Hub id or a local directory, on
    ``device`` in ``dtype`` (see :func:`resolve_device` and :func:`resolve_dtype`). ``dtype="int8"``
    quantises the Linear layers as ``int8`` says (:mod:`xdanalysis.model.quantize`; CPU only),
    built once per weights and settings and cached on disk.

    ``runtime="openvino"`` compiles the model with OpenVINO for the CPU (:mod:`xdanalysis.model.openvino`:
    logits only, the fast way to predict), as ``openvino`` says; its int8 is NNCF's static quantisation,
    calibrated on ``calibration`` (a :class:`~xdanalysis.model.openvino.Calibration`). Converted once per
    weights and settings and cached on disk as OpenVINO's files.

    Refuses a checkpoint whose QA head would be freshly initialised (a plain encoder) unless
    ``allow_random_head=True``, and a checkpoint without a fast tokenizer (offsets are needed).
    When the Hub cannot be reached, fails in seconds and says how to point at local files.
    ``with_info=True`` returns ``(model, tokenizer, info)``, ``info["random_head"]`` telling
    whether the QA head is untrained (views say so on screen); the model itself is not marked.

    Example::

        model, tokenizer = load_qa_model("../shared/models/minilm-l6-squad2-demo")
    """
    name = os.fspath(name_or_path)
    require_model(name, revision=revision)
    if looks_local(name):
        name = str(Path(name).expanduser())
    check_choice("runtime", runtime, RUNTIMES)
    target_device, target_dtype = resolve_placement(device, dtype, runtime)
    tokenizer = _fast_tokenizer(name, revision=revision)
    if runtime == "openvino":
        model = _openvino_qa_model(name, revision=revision, dtype=target_dtype, settings=openvino,
                                   calibration=calibration, tokenizer=tokenizer)
        fresh = list(model.record.get("untrained_weights", []))
    elif target_dtype == "int8":
        model = _int8_qa_model(name, revision=revision, attn_implementation=attn_implementation, int8=int8)
        fresh = list(getattr(model, "untrained_weights", []))
    else:
        model, fresh = _qa_model(name, revision=revision, attn_implementation=attn_implementation)
    if fresh and not allow_random_head:
        raise ModelLoadError(
            f"{name}: the checkpoint has no trained question-answering head (freshly initialised: "
            f"{', '.join(sorted(fresh))}); its answers would be random. Use a checkpoint fine-tuned for "
            "extractive QA, or pass allow_random_head=True (CLI: --allow-random-head) for a demo or a test."
        )
    import torch

    if target_dtype != "int8" and runtime == "torch":
        model.to(device=target_device, dtype=getattr(torch, target_dtype))
    model.eval()
    if with_info:
        return model, tokenizer, {"random_head": bool(fresh), "untrained_weights": sorted(fresh), "name": name,
                                  "device": target_device, "dtype": target_dtype}
    return model, tokenizer


def _qa_model(name: str, *, revision, attn_implementation):
    """The QA model and the names of its head weights that were freshly initialised (none for a QA
    checkpoint; the whole head for a plain encoder)."""
    import transformers
    from transformers import AutoModelForQuestionAnswering

    from .pruning import PRUNED_HEADS_FILE, load_pruned

    if (Path(name) / PRUNED_HEADS_FILE).is_file():  # a pruned checkpoint (xdanalysis.model.pruning)
        return load_pruned(name), []
    kwargs = {k: v for k, v in (("revision", revision), ("attn_implementation", attn_implementation)) if v}
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # we report a missing head ourselves, clearly
    try:
        with transformers_bars():
            model, info = AutoModelForQuestionAnswering.from_pretrained(name, output_loading_info=True, **kwargs)
    except ValueError as exc:
        raise ModelLoadError(f"{name}: this architecture has no extractive question-answering head "
                             f"in transformers ({exc})") from exc
    except RuntimeError as exc:
        if "mismatched" not in str(exc) and "size mismatch" not in str(exc):
            raise
        raise ModelLoadError(f"{name}: the weights' shapes do not fit its config.json; a checkpoint whose heads were "
                             f"pruned needs its {PRUNED_HEADS_FILE} beside the weights (missing here): put it back, or "
                             "save the pruned model again (save_pruned)") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    prefix = f"{model.base_model_prefix}."
    return model, [k for k in info.get("missing_keys", []) if not k.startswith(prefix)]


def _int8_qa_model(name: str, *, revision, attn_implementation, int8: Int8Settings):
    """The int8 model of checkpoint ``name``, from the cache when its weights were quantised before."""
    from .quantize import int8_model

    def load_float():
        model, fresh = _qa_model(name, revision=revision, attn_implementation=attn_implementation)
        model.untrained_weights = fresh  # kept with the cached model: the random-head check still applies
        return model

    def structure():  # the architecture alone, for the cached int8 weights (no float weights read)
        from transformers import AutoConfig, AutoModelForQuestionAnswering

        from .pruning import PRUNED_HEADS_FILE, pruned_structure

        if (Path(name) / PRUNED_HEADS_FILE).is_file():
            return pruned_structure(name)
        kwargs = {k: v for k, v in (("attn_implementation", attn_implementation),) if v}
        config = AutoConfig.from_pretrained(name, **({"revision": revision} if revision else {}))
        return AutoModelForQuestionAnswering.from_config(config, **kwargs)

    return int8_model(weights_fingerprint(name, revision=revision), load_float, int8, structure=structure)


def _openvino_qa_model(name: str, *, revision, dtype: str, settings: OpenVINOSettings, calibration, tokenizer):
    """Checkpoint ``name`` compiled by OpenVINO in ``dtype``, from the cache when it was converted before."""
    from transformers import AutoConfig

    from .openvino import openvino_model

    def load_float():
        model, fresh = _qa_model(name, revision=revision, attn_implementation=None)
        model.untrained_weights = fresh  # kept in the cache's record: the random-head check still applies
        return model

    config = AutoConfig.from_pretrained(name, **({"revision": revision} if revision else {}))
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    return openvino_model(weights_fingerprint(name, revision=revision), load_float, dtype=dtype, config=config,
                          input_names=inputs, settings=settings, calibration=calibration, tokenizer=tokenizer)


def weights_fingerprint(name: str, *, revision: str | None = None) -> str:
    """A hash of the files of checkpoint ``name`` that can change its answers: the local directory's,
    or for a Hub id the downloaded snapshot's (which names the commit)."""
    path = Path(name).expanduser()
    if not path.is_dir():
        from transformers.utils import cached_file

        path = Path(cached_file(name, "config.json", **({"revision": revision} if revision else {}))).parent
    return model_identity(str(path))["model_fingerprint"]


def _fast_tokenizer(name: str, *, revision):
    """The checkpoint's tokenizer, which must be a fast one: offsets map answers back to the text."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **({"revision": revision} if revision else {}))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{name}: no usable tokenizer ({exc})") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{name}: the tokenizer is not a fast tokenizer; offsets (needed to map answers "
                             "back to the text) require one (a tokenizer.json file)")
    return tokenizer


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


# Files beside a checkpoint that say how it was made and cannot change its answers.
_NOT_MODEL_FILES = {"training.json", "distill.json", "training_log.parquet", "checkpoint.pt", "distill-progress.json"}


def model_files(path: Path):
    # Everything that can change the model's answers; notes, provenance and hidden files are not part of it.
    return [f for f in sorted(path.iterdir())
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() != ".md"
            and f.name not in _NOT_MODEL_FILES and not f.name.endswith(".tmp")]


def model_identity(model) -> dict:
    if not is_reference(model):
        loaded = model[0]
        name = getattr(loaded, "name_or_path", None) or getattr(loaded.config, "_name_or_path", "in-memory model")
        return {"model": str(name), "model_fingerprint": "in-memory"}
    name = os.fspath(model)
    path = Path(name).expanduser()
    if path.is_dir():
        # Whole files, streamed: weights edited in place change the fingerprint (about 0.1 s for
        # a 130 MB checkpoint once the file is in the page cache).
        digest = hashlib.sha256()
        for file in model_files(path):
            digest.update(file.name.encode() + b"\0")
            with open(file, "rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        return {"model": str(path.resolve()), "model_fingerprint": digest.hexdigest()[:16]}
    return {"model": name, "model_fingerprint": "hub"}


def training_record(model) -> dict:
    """What a model directory's ``training.json`` says it was trained on (``trained_on_titles``,
    ``held_out_titles``, ...); ``{}`` for a Hub id, a loaded model, or a directory that says nothing.
    The one reader of that file.

    >>> training_record("nbroad/xdistil-l12-h384-squad2")
    {}
    """
    if not is_reference(model):
        return {}
    file = Path(os.fspath(model)).expanduser() / "training.json"
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def training_overlap(model, table: pd.DataFrame) -> dict | None:
    """Which of ``table``'s articles the model was trained on, if its directory says so
    (``training.json`` with ``trained_on_titles``); None when it does not say.

    Example::

        training_overlap("../shared/models/minilm-l6-squad2-demo", table)["questions"]
    """
    record = training_record(model)
    if "trained_on_titles" not in record:
        return None
    seen = table["title"].isin(set(record["trained_on_titles"] or []))
    return {"titles": sorted(set(table.loc[seen, "title"])), "questions": int(seen.sum()),
            "of": int(len(table))}

