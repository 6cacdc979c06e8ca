"""The compression lab: each variant of a model run as a normal cached run on held-out articles,
timed together on the same questions, and compared with float32 the SQuAD 2.0 way (answerable and
unanswerable sides, the null threshold, calibration, which answers changed)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.data import Selection
from ..core.io import write_atomic, write_json
from ..core.settings import DecodingSettings, Execution, WindowSettings
from ..compress.variants import DEFAULT_VARIANTS, Variant, build_checkpoint, check_variants, folder_name

__all__ = ['CompressSettings', 'Compression', 'compress', 'COMPRESS_FILE', 'verdict']


COMPRESS_FILE = "compress.json"


@dataclass(frozen=True)
class CompressSettings:
    """How the lab measures: ``importance_questions`` training questions for head importance,
    ``speed_questions`` held-out questions every variant is timed on, ``speed_rounds`` rounds of
    taking turns, ``n_boot`` bootstrap resamples for the intervals, ``seed``; the window and
    decoding settings of every run."""

    importance_questions: int = 200
    speed_questions: int = 64
    speed_rounds: int = 3
    n_boot: int = 1000
    seed: int = 0
    batch_size: int = 32
    windowing: WindowSettings = WindowSettings()
    decoding: DecodingSettings = DecodingSettings()

    def __post_init__(self):
        for name in ("importance_questions", "speed_questions", "speed_rounds", "n_boot", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")

    def as_dict(self) -> dict:
        return {"importance_questions": self.importance_questions, "speed_questions": self.speed_questions,
                "speed_rounds": self.speed_rounds, "n_boot": self.n_boot, "seed": self.seed,
                "batch_size": self.batch_size, **self.windowing.as_dict(), **self.decoding.as_dict()}


@dataclass
class Compression:
    """What :func:`compress` made: ``table`` (one row per variant: size, speed, scores and their
    differences to float32 with 95% intervals, answers changed, threshold, AURC, ECE), the ``runs``
    and ``comparisons`` (float32 vs each variant, with the outcome transitions) by variant name."""

    path: Path
    variants: tuple
    table: pd.DataFrame
    runs: dict = field(repr=False)
    comparisons: dict = field(repr=False)

    def verdict(self) -> list:
        """One computed sentence per variant (see :func:`verdict`)."""
        return verdict(self.table)

    def head_pruning(self, name: str) -> tuple:
        """``(importance, pruned)`` of a head-pruning variant: every head's importance (layers × heads)
        and the heads it removed, ``{layer: [heads]}``."""
        variant = {v.name: v for v in self.variants}.get(name)
        if variant is None or variant.kind != "heads":
            raise ValueError(f"{name!r} is not a head-pruning variant of this lab "
                             f"({', '.join(v.name for v in self.variants if v.kind == 'heads') or 'none'})")
        importance = json.loads((self.path / "head_importance.json").read_text(encoding="utf-8"))["importance"]
        made = json.loads((self.path / "models" / folder_name(name) / "variant.json").read_text(encoding="utf-8"))
        return np.asarray(importance), {int(k): v for k, v in made["pruned_heads"].items()}


def compress(model, data, out, *, held_out, variants=DEFAULT_VARIANTS, settings: CompressSettings = CompressSettings(),
             limit: int | None = None, progress: bool = True) -> Compression:
    """Make every variant of ``model``, run each on the ``held_out`` articles of ``data`` (a cached
    run in ``out/runs/<variant>``), time them all in one go on the same questions, and compare each
    with the first variant (float32). Head importance is measured on the other articles of ``data``;
    ``held_out=None`` evaluates on all of ``data`` (a Hub dataset's validation split, whose train
    split then gives the importance questions). Everything is kept in ``out``:
    a second call reuses it, an interrupted one resumes (finished runs and models are not redone).

    Example::

        result = compress("../shared/models/minilm-l6-squad2-demo", "../shared/data/squad-v2-dev-half.json",
                          "runs/compress", held_out=["French_and_Indian_War", "Force"])
        result.table[["variant", "F1", "F1 diff", "NoAns acc diff", "answers changed (%)"]]
    """
    from ..core.data import load_squad
    from ..runs.store import locked, refuse_foreign

    variants = _checked(variants)
    source = os.fspath(model)
    check_variants(variants, source)
    out = Path(out).expanduser()
    refuse_foreign(out, markers=(COMPRESS_FILE,), what="a compression-lab directory")
    held_out = list(held_out) if held_out else None
    held = load_squad(data, titles=held_out, limit=limit)
    record = {"model": source, "data": str(data), "held_out": held_out, "limit": limit,
              "variants": [v.as_dict() for v in variants], "settings": settings.as_dict()}
    # Every check passed: only now is anything written, under the lab's own lock. compress.json marks a
    # new lab at once; an existing lab's record is replaced only with the comparison it describes.
    with locked(out):
        if not (out / COMPRESS_FILE).exists():
            write_json(out / COMPRESS_FILE, record, indent=2)
        importance = _importance_of(source, lambda: _training_questions(data, held_out), out, settings,
                                    progress=progress)
        checkpoints, runs = {}, {}
        for variant in variants:
            folder = out / "models" / folder_name(variant.name)
            checkpoints[variant.name] = build_checkpoint(variant, source, folder, importance=importance)
            runs[variant.name] = _variant_run(checkpoints[variant.name], data, out / "runs" / folder_name(variant.name),
                                              variant, Selection(titles=held_out, limit=limit), settings,
                                              progress=progress)
        speed = _speed(variants, checkpoints, runs, held, out, settings, data=data)
        result = _comparison(out, variants, runs, speed, settings)
        write_json(out / COMPRESS_FILE, record, indent=2)
        return result


def _execution(variant: Variant, settings: CompressSettings, *, progress: bool = False) -> Execution:
    """How a variant runs: on the CPU, in its dtype, on its runtime."""
    return Execution(device="cpu", dtype=variant.dtype, int8=variant.int8, runtime=variant.runtime,
                     batch_size=settings.batch_size, progress=variant.name if progress else False)


def _variant_run(checkpoint: str, data, folder: Path, variant: Variant, held: Selection,
                 settings: CompressSettings, *, progress: bool):
    """The variant's run over the ``held`` questions of ``data``: reused when done with these settings,
    resumed when interrupted, made again when the variant or the lab's settings changed (the lab's own
    run directory: replacing it loses nothing of the user's). OpenVINO's int8 is calibrated on questions
    of ``data`` outside ``held`` (:func:`~xdanalysis.runs.calibration.calibration_for`)."""
    from ..runs.run import predict_run
    from ..runs.store import RunMismatchError

    options = dict(selection=held, windowing=settings.windowing, decoding=settings.decoding,
                   execution=_execution(variant, settings, progress=progress))
    try:
        return predict_run(checkpoint, data, folder, **options)
    except RunMismatchError:
        return predict_run(checkpoint, data, folder, overwrite=True, **options)


def _checked(variants) -> tuple:
    variants = tuple(variants)
    if not variants or any(not isinstance(v, Variant) for v in variants):
        raise ValueError("variants must be Variant objects (see xdanalysis.compress.parse_variant), the first the "
                         "float32 reference")
    if variants[0].kind != "float32":
        raise ValueError(f"the first variant is the reference every other is compared with; it must be float32, "
                         f"got {variants[0].name!r} ({variants[0].kind})")
    names = [v.name for v in variants]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"variant names must differ: {', '.join(doubled)} given twice")
    return variants


def _training_questions(data, held_out) -> pd.DataFrame:
    """Questions with gold that the evaluation never sees: the other articles, or the train split."""
    from ..core.data import load_squad

    if held_out:
        return load_squad(data, exclude_titles=held_out)
    if Path(os.fspath(data)).expanduser().exists():
        raise ValueError(f"{data}: without held-out articles, head importance has no training questions to use "
                         "in a local file; name the articles to evaluate on (held_out=[...], CLI --held-out) and "
                         "the others are used")
    return load_squad(data, split="train")


def _importance_of(source: str, training, out: Path, settings: CompressSettings, *, progress: bool):
    """A function giving the head importance on training questions, computed at most once (kept in
    ``out/head_importance.json``, keyed by the model's fingerprint and the questions)."""
    from ..model.loading import load_qa_model, model_identity
    from ..compress.importance import head_importance

    def importance():
        training_table = training()
        sample = training_table.sample(n=min(settings.importance_questions, len(training_table)),
                                       random_state=settings.seed)
        key = {"model_fingerprint": model_identity(source)["model_fingerprint"],
               "questions": sorted(sample["id"].astype(str))}
        file = out / "head_importance.json"
        if file.exists():
            saved = json.loads(file.read_text(encoding="utf-8"))
            if saved.get("key") == key:
                return np.asarray(saved["importance"])
        model, tokenizer = load_qa_model(source, device="cpu")
        scores = head_importance(model, tokenizer, sample, windowing=settings.windowing, progress=progress)
        write_json(file, {"key": key, "importance": scores.tolist()})
        return scores

    return importance


def _speed(variants, checkpoints: dict, runs: dict, held: pd.DataFrame, out: Path, settings: CompressSettings, *,
           data):
    """Every variant timed in turns on the same held-out questions, in one go (``out/speed.parquet``;
    timed again only when the variants or their runs change)."""
    from .tradeoff import tradeoff_table
    from ..runs.calibration import calibration_for
    from ..runs.engines import load_as

    key = json.dumps({"variants": [v.as_dict() for v in variants], "runs": [runs[v.name].info.get("created")
                      for v in variants], "settings": settings.as_dict()}, sort_keys=True)
    file, key_file = out / "speed.parquet", out / "speed.key"
    if file.exists() and key_file.exists() and key_file.read_text(encoding="utf-8") == key:
        return pd.read_parquet(file)
    entries = {}
    for variant in variants:
        execution = _execution(variant, settings)
        calibration = calibration_for(checkpoints[variant.name], data, held, settings=execution.openvino,
                                      windowing=settings.windowing) if variant.runtime == "openvino" and \
            variant.dtype == "int8" else None  # the run's own: its converted model is read from the cache
        model, tokenizer = load_as(checkpoints[variant.name], execution, calibration)
        entries[variant.name] = (model, tokenizer, None, runs[variant.name])
    questions = held.sample(n=min(settings.speed_questions, len(held)), random_state=settings.seed)
    speed = tradeoff_table(entries, questions, repeats=settings.speed_rounds, windowing=settings.windowing,
                           decoding=settings.decoding, batch_size=settings.batch_size)
    speed["timed questions"] = len(questions)
    write_atomic(file, lambda tmp: speed.to_parquet(tmp, index=False))
    key_file.write_text(key, encoding="utf-8")
    return speed


# The measures compared with float32, as (column prefix, group and metric of Comparison.metrics).
_DIFFERENCES = {"EM": ("overall", "EM"), "F1": ("overall", "F1"), "HasAns F1": ("HasAns", "F1"),
                "NoAns acc": ("NoAns", "EM")}


def _comparison(out: Path, variants, runs: dict, speed: pd.DataFrame, settings: CompressSettings) -> Compression:
    from ..analysis.calibration import calibration_summary
    from ..analysis.compare import compare
    from ..analysis.selective import aurc

    reference = variants[0].name
    speed = speed.set_index("model")
    rows, comparisons = [], {}
    for variant in variants:
        result = compare(runs[reference], runs[variant.name], labels=(reference, variant.name),
                         n_boot=settings.n_boot, seed=settings.seed)
        comparisons[variant.name] = result
        rows.append({"variant": variant.name, "kind": variant.kind, "questions": len(result.joined),
                     **_size_and_speed(speed, variant.name, reference), **_differences(result, variant.name),
                     "threshold": float(runs[variant.name].threshold),  # what its answers were decided at
                     "AURC": aurc(runs[variant.name].table),
                     "ECE": float(calibration_summary(runs[variant.name]).iloc[0]["ECE"]),
                     "run": str(runs[variant.name].path)})
    table = pd.DataFrame(rows)
    write_atomic(out / "comparison.csv", lambda tmp: table.to_csv(tmp, index=False))
    return Compression(path=out, variants=tuple(variants), table=table, runs=runs, comparisons=comparisons)


def _size_and_speed(speed: pd.DataFrame, name: str, reference: str) -> dict:
    ms = speed.loc[name, "ms/question"]
    return {"parameters (M)": speed.loc[name, "parameters (M)"], "weights (MB)": speed.loc[name, "weights (MB)"],
            "q/s": 1000 / ms, "speed-up": speed.loc[reference, "ms/question"] / ms}


def _differences(result, name: str) -> dict:
    """The variant's scores, each with its difference to float32 and the 95% paired-bootstrap interval;
    the best-F1 threshold and its shift; the share of answers and of abstain decisions changed."""
    metrics = result.metrics.set_index(["group", "metric"])
    row = {}
    for column, key in _DIFFERENCES.items():
        if key not in metrics.index:  # no question of that side among the held-out ones: not known, not 0
            row[column], row[f"{column} questions"] = math.nan, 0
            row[f"{column} diff"] = row[f"{column} low"] = row[f"{column} high"] = math.nan
            continue
        found = metrics.loc[key]
        row[column], row[f"{column} questions"] = found[name], int(found["count"])
        row[f"{column} diff"], row[f"{column} low"], row[f"{column} high"] = found["difference"], found["low"], \
            found["high"]
    best = metrics.loc[("at best threshold", "F1")]
    reference = result.labels[0]
    row["best F1"], row["best threshold"] = best[name], best[f"{name} threshold"]
    before = best[f"{reference} threshold"]
    row["threshold shift"] = 0.0 if row["best threshold"] == before else row["best threshold"] - before  # ±∞ too
    row["answers changed (%)"] = 100 * (1 - result.agreement["same answer text"])
    row["answers changed"] = int(round((1 - result.agreement["same answer text"]) * len(result.joined)))
    row["abstentions changed (%)"] = 100 * (1 - result.agreement["same abstain decision"])
    row["answered"] = int((result.joined["answer_b"] != "").sum())
    return row


def verdict(table: pd.DataFrame) -> list:
    """One sentence per variant, computed from the comparison table: which side (answerable F1,
    unanswerable accuracy) moved beyond its 95% bootstrap interval, how many answers changed, the
    speed-up and how far the best null threshold moved."""
    lines = []
    for row in table.iloc[1:].to_dict("records"):
        sides = []
        for side, label in (("HasAns F1", "answerable F1"), ("NoAns acc", "unanswerable accuracy")):
            diff, low, high = row[f"{side} diff"], row[f"{side} low"], row[f"{side} high"]
            if not row[f"{side} questions"]:
                sides.append(f"{label} not measured (no such question held out)")
                continue
            if high < 0 or low > 0:
                sides.append(f"{'loses' if high < 0 else 'gains'} {label} ({diff:+.1f} points, "
                             f"95% CI {low:+.1f} to {high:+.1f})" + _abstains_note(row, side, low))
        kept = "; ".join(sides) or "no change beyond the 95% interval on either side"
        moved = _moved(row["threshold shift"], row["best threshold"])
        changed = (f"{int(row['answers changed'])} of {int(row['questions'])} answers changed"
                   if "answers changed" in row and row["answers changed"] == row["answers changed"] else
                   f"{row['answers changed (%)']:.1f}% of answers changed")
        at = f" at null-odds threshold {row['threshold']:g}" if "threshold" in row else ""
        lines.append(f"{row['variant']}{at}: {kept}; {changed}, "
                     f"{row['speed-up']:.2f}x float32's speed, best threshold {moved}.")
    return lines


# A variant answering at most this share (%) of the questions gains unanswerable accuracy by not answering.
HARDLY_ANSWERS = 5.0


def _abstains_note(row: dict, side: str, low: float) -> str:
    """What an unanswerable-accuracy gain means when the variant hardly answers at all."""
    answered, questions = row.get("answered"), row.get("questions")
    if side != "NoAns acc" or low <= 0 or answered is None or not questions:
        return ""
    if 100 * answered / questions > HARDLY_ANSWERS:
        return ""
    return f": it answers {answered} of {questions} questions, so the gain is in not answering, not in telling"


def _moved(shift: float, threshold: float) -> str:
    """How a variant's best null-odds threshold moved, in words. Abstain when null odds exceed the
    threshold: at −∞ every question abstains, at +∞ every one is answered."""
    if math.isinf(threshold):
        return "now −∞ (abstaining on every question scores best)" if threshold < 0 else \
            "now +∞ (answering every question scores best)"
    if math.isinf(shift):  # float32's own was infinite
        return f"now {threshold:+.2f} (float32's was {'+' if shift < 0 else '−'}∞)"
    return f"moved {shift:+.2f}"
