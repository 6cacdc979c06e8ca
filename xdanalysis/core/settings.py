"""The window and decoding settings, as frozen objects: the one home of their defaults (run_qa's and
utils_qa's, and the original SQuAD scripts' ``max_query_length``), their checks, and how a run's
``run.json`` stores and gives them back.

>>> WindowSettings(max_seq_length=128, doc_stride=32)
WindowSettings(max_seq_length=128, doc_stride=32, max_query_length=64)
>>> DecodingSettings(n_best_size=0)
Traceback (most recent call last):
...
ValueError: n_best_size must be at least 1, got 0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from .common import check_choice

__all__ = ["WindowSettings", "DecodingSettings", "DECODING_DEFAULTS", "Int8Settings", "INT8_ENGINES", "NAIVE_INT8",
           "ENGINES", "RUNTIMES", "OPENVINO_PRESETS", "FFN_OUTPUTS", "OpenVINOSettings", "Execution", "settings_of_run"]


def _whole(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be {'at least 1' if least else '0 or more'}, got {value}")


@dataclass(frozen=True)
class WindowSettings:
    """How a question and its context become windows: ``max_seq_length`` tokens per window,
    ``doc_stride`` tokens of overlap, questions cut to ``max_query_length`` tokens."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64

    def __post_init__(self):
        _whole("max_seq_length", self.max_seq_length, 1)
        _whole("max_query_length", self.max_query_length, 1)
        _whole("doc_stride", self.doc_stride, 0)
        if self.doc_stride >= self.max_seq_length:
            raise ValueError(f"doc_stride ({self.doc_stride}) must be smaller than max_seq_length "
                             f"({self.max_seq_length})")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict):
        """The settings a record (``as_dict``'s, or a run's ``run.json`` settings) names; other keys are
        ignored and a setting it does not name takes its default."""
        return _from_dict(cls, record)


@dataclass(frozen=True)
class DecodingSettings:
    """How windows' logits become an answer (utils_qa's): the ``n_best_size`` best starts and ends,
    spans of at most ``max_answer_length`` tokens, and abstain when null odds exceed
    ``null_score_diff_threshold``."""

    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0

    def __post_init__(self):
        _whole("n_best_size", self.n_best_size, 1)
        _whole("max_answer_length", self.max_answer_length, 1)
        threshold = self.null_score_diff_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
                or not math.isfinite(threshold):
            raise ValueError(f"null_score_diff_threshold must be a finite number, got {threshold!r}")
        object.__setattr__(self, "null_score_diff_threshold", float(threshold))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict):
        """The settings a record (``as_dict``'s, or a run's ``run.json`` settings) names; other keys are
        ignored and a setting it does not name takes its default."""
        return _from_dict(cls, record)


# The int8 engines measured side by side (benchmarks/bench_compress.py); the one the library runs.
INT8_ENGINES = ["pytorch-dynamic"]


@dataclass(frozen=True)
class Int8Settings:
    """How a model is quantised to int8 for ``dtype="int8"``: PyTorch's dynamic quantisation of the
    Linear layers (weights int8 ahead of time, activations quantised per batch as they come), with
    ``per_channel`` weight scales (one per output row) or one per matrix; ``reduce_range``: 7-bit
    activations, which avoid int16 saturation on x86 CPUs without VNNI (None: 7 bits on such a CPU,
    8 bits where VNNI accumulates in int32); Linear layers whose names match a ``keep_float``
    pattern (:mod:`fnmatch`) stay float32. ``per_window``: one window per forward pass, so that each
    window's activations are quantised with their own scale. Batched, one scale covers the whole
    batch and its padding: on the demo model's held-out articles 14% of the answers changed with the
    windows a question happened to share a batch with (float32: none). Per window, an answer is the
    question's own, at about 12% of int8's speed.

    The default is what the compression lab measured best on the demo model's training articles on a
    CPU without VNNI (``benchmarks/bench_compress.py``, README "int8"): per-channel scales with the QA
    head and the first encoder layer in float32 moved F1 by -0.13 where :data:`NAIVE_INT8` (every
    Linear, one scale per matrix: ``quantize_dynamic`` asked plainly) moved it by -2.4.

    >>> Int8Settings().as_dict()
    {'engine': 'pytorch-dynamic', 'per_channel': True, 'reduce_range': None, 'keep_float': ['qa_outputs', '*.layer.0.*'], 'per_window': True}
    >>> Int8Settings(engine="tensorrt")
    Traceback (most recent call last):
    ...
    ValueError: int8 engine must be one of pytorch-dynamic, got 'tensorrt'
    """

    engine: str = "pytorch-dynamic"
    per_channel: bool = True
    reduce_range: bool | None = None
    keep_float: tuple = ("qa_outputs", "*.layer.0.*")
    per_window: bool = True

    def __post_init__(self):
        if self.engine not in INT8_ENGINES:
            raise ValueError(f"int8 engine must be one of {', '.join(INT8_ENGINES)}, got {self.engine!r}")
        if isinstance(self.keep_float, str) or not all(isinstance(p, str) for p in self.keep_float):
            raise ValueError(f"keep_float must be a list of module-name patterns, got {self.keep_float!r}")
        object.__setattr__(self, "keep_float", tuple(self.keep_float))
        object.__setattr__(self, "per_channel", bool(self.per_channel))
        object.__setattr__(self, "per_window", bool(self.per_window))
        if self.reduce_range is not None:
            object.__setattr__(self, "reduce_range", bool(self.reduce_range))

    def as_dict(self) -> dict:
        return {"engine": self.engine, "per_channel": self.per_channel, "reduce_range": self.reduce_range,
                "keep_float": list(self.keep_float), "per_window": self.per_window}

    @classmethod
    def from_dict(cls, record: dict) -> "Int8Settings":
        """The settings ``as_dict`` wrote (a run's ``settings.int8``), round-trip by name."""
        return _from_dict(cls, record)


# Every Linear layer, one scale per weight matrix, 7-bit activations, batched: PyTorch's plain quantize_dynamic.
NAIVE_INT8 = Int8Settings(per_channel=False, reduce_range=True, keep_float=(), per_window=False)


# What runs the model's forward pass: PyTorch (everything: gradients, attention weights, hidden states), or
# OpenVINO's compiled model (logits only; xdanalysis.model.openvino), the fast way on a CPU.
RUNTIMES = ["torch", "openvino"]

# NNCF's quantisation presets: symmetric int8 activations (the fastest), or asymmetric ones (a zero point each).
OPENVINO_PRESETS = ["performance", "mixed"]


# The feed-forward output projections of BERT-style encoders (BERT, RoBERTa, ELECTRA, MiniLM) and DistilBERT, as
# OpenVINO names their nodes: what OpenVINOSettings keeps in float by default.
FFN_OUTPUTS = (r".*\.layer\.\d+\.output\.dense/.*", r".*\.ffn\.lin2/.*")


@dataclass(frozen=True)
class OpenVINOSettings:
    """How OpenVINO runs a model (``runtime="openvino"``). float32 and bfloat16 are OpenVINO's inference
    precision (the same converted model, compiled with its precision hint); int8 is NNCF's post-training
    quantisation: static activation scales, measured once on ``calibration_windows`` windows, so a window's
    answer never depends on the windows it shares a batch with.

    - ``calibration_windows`` windows are drawn (seeded by ``seed``) from questions **outside the run's data**:
      from ``calibration_data`` (any source ``load_squad`` takes) when given; else the model's training
      articles when its ``training.json`` lists them; else the articles of the run's data that the run leaves
      out (a run over all of its data is calibrated on its own questions, and says so);
    - ``preset``: NNCF's ``performance`` (symmetric activations) or ``mixed`` (asymmetric: a zero point each);
    - ``keep_float``: regular expressions of OpenVINO node names left in float. The default keeps each
      layer's feed-forward output projection (BERT's ``layer.N.output.dense``, DistilBERT's ``ffn.lin2``), whose
      input carries the outlier activations a per-tensor int8 scale cannot hold (Bondarenko et al., 2021,
      "Understanding and Overcoming the Challenges of Efficient Transformer Quantization"): on the demo model's
      779 held-out questions, quantising them too moved answerable F1 by -2.5 points (95% CI -4.3 to -0.9) and
      changed 4.7% of the answers; kept in float, -0.8 (-2.3 to +0.6) and 3.0%, at two thirds of the speed
      (``benchmarks/bench_runtime.py``, README "Speed"). ``()`` quantises every layer;
    - ``threads``: inference threads (None: every core this process may use). Not part of a run's identity.

    >>> OpenVINOSettings(preset="fast")
    Traceback (most recent call last):
    ...
    ValueError: unknown OpenVINO preset 'fast'; use one of ['performance', 'mixed']
    """

    calibration_windows: int = 100
    calibration_data: str | None = None
    preset: str = "performance"
    keep_float: tuple = FFN_OUTPUTS
    seed: int = 0
    threads: int | None = None

    def __post_init__(self):
        _whole("calibration_windows", self.calibration_windows, 1)
        _whole("seed", self.seed, 0)
        if self.threads is not None:
            _whole("threads", self.threads, 1)
        check_choice("OpenVINO preset", self.preset, OPENVINO_PRESETS)
        if isinstance(self.keep_float, str) or not all(isinstance(p, str) for p in self.keep_float):
            raise ValueError(f"keep_float must be a list of node-name patterns, got {self.keep_float!r}")
        object.__setattr__(self, "keep_float", tuple(self.keep_float))
        if self.calibration_data is not None:
            object.__setattr__(self, "calibration_data", str(self.calibration_data))

    def as_dict(self) -> dict:
        return {**asdict(self), "keep_float": list(self.keep_float)}

    def int8_recipe(self) -> dict:
        """What decides an int8 model's weights and scales (everything but the threads): part of a run's identity."""
        return {k: v for k, v in self.as_dict().items() if k != "threads"}

    @classmethod
    def from_dict(cls, record: dict) -> "OpenVINOSettings":
        """The settings ``as_dict`` wrote, round-trip by name."""
        return _from_dict(cls, record)


# Where the chunks of a run are computed: in this process, or on Ray Data actors (xdanalysis.runs.engines).
ENGINES = ["local", "ray"]


@dataclass(frozen=True)
class Execution:
    """How a model runs, carried whole by everything that runs one (``predict_run``, ``run_probes``,
    ``distill``, ``teacher_logits``, the engines and the CLI):

    - ``device`` (``auto``, ``cpu``, ``cuda``, ``mps``; None: auto) and ``dtype`` (``auto``, ``float32``,
      ``bfloat16``, ``float16``, ``int8``; None: float32, the dtype of the official figures), with
      ``int8`` how PyTorch quantises an int8 model;
    - ``runtime``: ``torch`` (default) or ``openvino`` (the CPU's fast way: logits only), with ``openvino``
      its settings (:class:`OpenVINOSettings`);
    - ``engine`` ``local`` or ``ray`` (``ray_address`` a cluster, default a local Ray; ``workers`` actors,
      each loading the model once);
    - ``batch_size`` windows per forward pass, ``chunk_size`` questions per chunk file (the unit of resume
      and of a Ray task);
    - ``allow_random_head``: run a model whose QA head is untrained (its answers are noise: tests, demos);
    - ``progress``: a progress bar (True), none (False), or the bar's label.

    Device, dtype, runtime and how int8 is made are part of a run's identity; the rest only decide how it is made.

    >>> Execution(batch_size=8).batch_size
    8
    >>> Execution(engine="spark")
    Traceback (most recent call last):
    ...
    ValueError: unknown engine 'spark'; use one of ['local', 'ray']
    """

    device: str | None = None
    dtype: str | None = None
    int8: Int8Settings = Int8Settings()
    runtime: str = "torch"
    openvino: OpenVINOSettings = OpenVINOSettings()
    engine: str = "local"
    ray_address: str | None = None
    workers: int | None = None
    batch_size: int = 32
    chunk_size: int = 512
    allow_random_head: bool = False
    progress: bool | str = True

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; use one of {ENGINES}")
        _whole("batch_size", self.batch_size, 1)
        _whole("chunk_size", self.chunk_size, 1)
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise ValueError(f"workers must be at least 1 (one Ray actor each), got {self.workers}")
        if not isinstance(self.int8, Int8Settings):
            raise ValueError(f"int8 must be an Int8Settings, got {self.int8!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {self.runtime!r}; use one of {RUNTIMES}")
        if not isinstance(self.openvino, OpenVINOSettings):
            raise ValueError(f"openvino must be an OpenVINOSettings, got {self.openvino!r}")
        object.__setattr__(self, "allow_random_head", bool(self.allow_random_head))

    def as_dict(self) -> dict:
        return {**asdict(self), "int8": self.int8.as_dict(), "openvino": self.openvino.as_dict()}

    @classmethod
    def from_dict(cls, record: dict) -> "Execution":
        """The execution ``as_dict`` wrote, round-trip by name."""
        record = dict(record)
        for name, kind in (("int8", Int8Settings), ("openvino", OpenVINOSettings)):
            if isinstance(record.get(name), dict):
                record[name] = kind.from_dict(record[name])
        return _from_dict(cls, record)


# The defaults of both, by name (the CLI's option defaults are read from here).
DECODING_DEFAULTS = {**WindowSettings().as_dict(), **DecodingSettings().as_dict()}


def settings_of_run(settings: dict) -> tuple[WindowSettings, DecodingSettings]:
    """The window and decoding settings a run was made with, from its ``run.json`` ``settings``
    (a setting a run does not record takes its default): the one reader of them.

    >>> settings_of_run({"max_seq_length": 256, "null_score_diff_threshold": -1.5})[1].null_score_diff_threshold
    -1.5
    """
    return WindowSettings.from_dict(settings), DecodingSettings.from_dict(settings)


def _from_dict(kind, record: dict):
    """``kind`` from the values ``record`` names for its fields (None: the default), by name."""
    return kind(**{f.name: record[f.name] for f in fields(kind) if record.get(f.name) is not None})
