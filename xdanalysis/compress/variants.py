"""The compressed variants of a model: what each is, and how it is made (once, cached on disk)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.common import check_choice
from ..core.io import write_json
from ..core.settings import NAIVE_INT8, RUNTIMES, Int8Settings

__all__ = ['KINDS', 'Variant', 'DEFAULT_VARIANTS', 'DEFAULT_VARIANT_TEXT', 'build_checkpoint', 'check_variants', 'folder_name',
           'variant_names', 'parse_variant', 'split_variants', 'student_variant']


KINDS = ["float32", "bfloat16", "int8", "heads", "layers", "student"]


@dataclass(frozen=True)
class Variant:
    """One way of shrinking the model: a dtype (``float32``, ``bfloat16``, ``int8`` with its
    :class:`Int8Settings`), attention heads pruned by importance (``heads``, ``fraction`` of all
    heads), encoder ``layers`` kept (``layers``: the others dropped, no training), or a trained
    ``student`` checkpoint. ``runtime``: what runs it, PyTorch or OpenVINO (whose int8 is NNCF's
    static quantisation, calibrated on questions outside the held-out ones). ``name`` labels it in
    every table and figure."""

    name: str
    kind: str
    fraction: float | None = None
    layers: tuple | None = None
    checkpoint: str | None = None
    int8: Int8Settings = field(default_factory=Int8Settings)
    runtime: str = "torch"

    def __post_init__(self):
        check_choice("variant kind", self.kind, KINDS)
        check_choice("variant runtime", self.runtime, RUNTIMES)
        if self.kind == "heads" and not (self.fraction is not None and 0 < self.fraction < 1):
            raise ValueError(f"variant {self.name!r}: head pruning needs a fraction in (0, 1), got {self.fraction}")
        if self.kind == "layers" and not self.layers:
            raise ValueError(f"variant {self.name!r}: layer dropping needs the layers to keep, e.g. (0, 2, 4)")
        if self.kind == "student" and not self.checkpoint:
            raise ValueError(f"variant {self.name!r}: a student needs its checkpoint directory")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    @property
    def dtype(self) -> str:
        return self.kind if self.kind in ("bfloat16", "int8") else "float32"

    def as_dict(self) -> dict:
        record = {"name": self.name, "kind": self.kind}
        for key in ("fraction", "layers", "checkpoint"):
            if getattr(self, key) is not None:
                record[key] = list(self.layers) if key == "layers" else getattr(self, key)
        if self.kind == "int8" and self.runtime == "torch":
            record["int8"] = self.int8.as_dict()
        if self.runtime != "torch":
            record["runtime"] = self.runtime
        return record




# The lab's variants when none are named (the CLI's --variants, notebook 08's XDANALYSIS_VARIANTS), fp32 first:
# every other variant is compared to it.
DEFAULT_VARIANT_TEXT = "fp32,bf16,int8-naive,int8,ov-fp32,ov-int8,heads:0.3,heads:0.5,layers:0,2,4"


def variant_names(variants) -> list:
    return [v.name for v in variants]


def student_variant(name: str, checkpoint) -> Variant:
    """A trained student (e.g. a lab student of :mod:`xdanalysis.labs.distill`) as a variant."""
    return Variant(name, "student", checkpoint=os.fspath(checkpoint))


# The variants named by a word alone: PyTorch's, and OpenVINO's (ov-).
_PLAIN = {"fp32": Variant("fp32", "float32"), "bf16": Variant("bf16", "bfloat16"), "int8": Variant("int8", "int8"),
          "int8-naive": Variant("int8 naive", "int8", int8=NAIVE_INT8),
          "ov-fp32": Variant("ov-fp32", "float32", runtime="openvino"),
          "ov-bf16": Variant("ov-bf16", "bfloat16", runtime="openvino"),
          "ov-int8": Variant("ov-int8", "int8", runtime="openvino")}


def split_variants(text: str) -> list:
    """Variants from a comma-separated list (:func:`parse_variant`); ``layers:0,2,4`` keeps its commas
    when it comes last, or write ``layers:0+2+4`` anywhere.

    >>> [v.name for v in split_variants("fp32,int8,layers:0,2,4")]
    ['fp32', 'int8', 'layers 0,2,4']
    """
    parts, variants = [p.strip() for p in text.split(",") if p.strip()], []
    while parts:
        part = parts.pop(0)
        if part.startswith("layers:"):  # its commas: every following part that is no variant of its own
            while parts and not (parts[0] in _PLAIN or ":" in parts[0] or "=" in parts[0]):
                part += "," + parts.pop(0)
        variants.append(parse_variant(part))
    return variants


def parse_variant(text: str) -> Variant:
    """A variant from its command-line spelling: ``fp32``, ``bf16``, ``int8``, ``int8-naive``,
    ``ov-fp32``, ``ov-bf16``, ``ov-int8`` (OpenVINO), ``heads:0.3``, ``layers:0,2,4`` or ``NAME=CHECKPOINT``
    (a student).

    >>> parse_variant("heads:0.3").name, parse_variant("layers:0+2").layers
    ('heads -30%', (0, 2))
    """
    text = text.strip()
    if text in _PLAIN:
        return _PLAIN[text]
    if text.startswith("heads:"):
        fraction = _number(text, float)
        if not 0 < fraction < 1:  # NaN fails too
            raise ValueError(f"variant {text!r}: the fraction of heads to prune must be between 0 and 1, "
                             "e.g. heads:0.3")
        return Variant(f"heads -{round(100 * fraction)}%", "heads", fraction=fraction)
    if text.startswith("layers:"):
        layers = tuple(_number(text, int, part) for part in text.split(":", 1)[1].replace("+", ",").split(","))
        return Variant("layers " + ",".join(map(str, layers)), "layers", layers=layers)
    if "=" in text:
        name, checkpoint = text.split("=", 1)
        return student_variant(name.strip(), checkpoint.strip())
    raise ValueError(f"unknown variant {text!r}: use fp32, bf16, int8, int8-naive, ov-fp32, ov-bf16, ov-int8, "
                     "heads:FRACTION, layers:0,2,4 or NAME=CHECKPOINT")


def _number(text: str, kind, part: str | None = None):
    """The number after ``heads:`` or one layer of ``layers:``; a message naming the variant otherwise."""
    part = text.split(":", 1)[1] if part is None else part
    try:
        return kind(part.strip())
    except ValueError:
        what = "a fraction such as heads:0.3" if kind is float else "whole layer numbers such as layers:0,2,4"
        raise ValueError(f"variant {text!r}: {part.strip()!r} is not a number; write {what}") from None


def folder_name(name: str) -> str:
    """The folder a variant's run and model live in, made from its name (``heads -30%`` → ``heads-30pct``);
    two names that give the same folder are refused together (:func:`check_variants`).

    >>> folder_name("heads -30%"), folder_name("a b"), folder_name("a-b")
    ('heads--30pct', 'a-b', 'a-b')
    """
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name.replace("%", "pct")).strip("-.")


def check_variants(variants, source) -> None:
    """Everything about ``variants`` that can be checked before any work, against the model ``source``:
    names that give distinct, non-empty folders; layers the model has; a fraction of heads that can be
    pruned while each layer keeps one; student checkpoints that exist."""
    folders: dict = {}
    for variant in variants:
        folder = folder_name(variant.name)
        if not folder:
            raise ValueError(f"variant name {variant.name!r}: needs a letter or digit (it names the variant's folder)")
        folders.setdefault(folder, []).append(variant.name)
    clashing = [names for names in folders.values() if len(names) > 1]
    if clashing:
        raise ValueError("variant names " + "; ".join(" and ".join(repr(n) for n in names) for names in clashing) +
                         " would share one folder (runs/" + folder_name(clashing[0][0]) + "); rename one")
    config = _config_of(source) if any(v.kind in ("heads", "layers") for v in variants) else None
    for variant in variants:
        if variant.kind == "layers":
            n_layers = config.num_hidden_layers
            outside = [i for i in variant.layers if not 0 <= i < n_layers]
            if outside or len(set(variant.layers)) != len(variant.layers):
                raise ValueError(f"variant {variant.name!r}: layers to keep must be distinct, each from 0 to "
                                 f"{n_layers - 1} (the model has {n_layers}); got {list(variant.layers)}")
        if variant.kind == "heads":
            heads = config.num_attention_heads
            most = (heads - 1) / heads
            if variant.fraction > most + 1e-9:
                raise ValueError(f"variant {variant.name!r}: each layer keeps at least one of its {heads} heads, so "
                                 f"at most {100 * most:.1f}% of the heads can be pruned (heads:{most:.3f})")
        if variant.kind == "student" and not Path(variant.checkpoint).expanduser().is_dir():
            raise ValueError(f"variant {variant.name!r}: the student checkpoint {variant.checkpoint} does not "
                             "exist (train it first, or correct NAME=CHECKPOINT)")


def _config_of(source):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(source)


def build_checkpoint(variant: Variant, source: str, folder: Path, *, importance) -> str:
    """The checkpoint a variant runs: the source itself for a dtype, the student's own, or a pruned
    or layer-dropped copy of the source saved in ``folder`` (made once; ``importance()`` gives the
    head importance when heads are pruned)."""
    from ..distill.students import cut_layers
    from ..model.checkpoint import save_checkpoint
    from ..model.loading import load_qa_model, model_identity
    from ..model.pruning import prune_heads, save_pruned
    from .importance import heads_to_prune

    if variant.kind in ("float32", "bfloat16", "int8"):
        return source
    if variant.kind == "student":
        return variant.checkpoint
    made_from = {"source_fingerprint": model_identity(source)["model_fingerprint"], **variant.as_dict()}
    record = folder / "variant.json"
    if record.exists() and _read(record) == made_from:
        return str(folder)
    model, tokenizer = load_qa_model(source, device="cpu")
    if variant.kind == "layers":
        save_checkpoint(cut_layers(model, variant.layers), tokenizer, folder)
    else:
        heads = heads_to_prune(importance(), variant.fraction)
        prune_heads(model, heads)
        save_pruned(model, tokenizer, folder)
        made_from["pruned_heads"] = {str(k): v for k, v in heads.items()}
    write_json(record, made_from, indent=2)  # last: a half-made folder is made again
    return str(folder)


def _read(path: Path) -> dict:
    import json

    record = json.loads(path.read_text(encoding="utf-8"))
    record.pop("pruned_heads", None)
    return record


DEFAULT_VARIANTS = tuple(split_variants(DEFAULT_VARIANT_TEXT))
