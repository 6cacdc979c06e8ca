"""Probe runs (a lab): the original questions and one run per rewrite, one model load, cached and
resumable, and their per-question results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import pandas as pd

from ..core.common import is_reference
from ..core.io import write_atomic
from ..core.data import Selection
from ..core.settings import DecodingSettings, Execution, WindowSettings
from ..analysis.probes.rewrites import PROBES, apply_probe, probe_names, probe_skips
from ..analysis.probes.summary import probe_results

__all__ = ['ProbeRuns', 'load_probes', 'run_probes']


def run_probes(model, data, out, *, probes="all", seed: int = 0, selection: Selection = Selection(),
               windowing: WindowSettings = WindowSettings(), decoding: DecodingSettings = DecodingSettings(),
               execution: Execution = Execution(), rationales=None, overwrite: bool = False) -> "ProbeRuns":
    """Run ``model`` on the original questions (``data`` and its ``selection``) and on every probe's
    rewrite (drawn with ``seed``); write ``out/``:

    - ``original/``  the run of the source questions; ``<probe>/questions.json`` (official
      format) and ``<probe>/run/``, each a normal run (cached and resumable);
    - ``probes.parquet``  :func:`probe_results`; ``probes.json``  the settings and, per probe,
      how many source questions it took and how many it skipped, by reason.

    ``rationales`` (SQuAD2-CR's, :func:`~xdanalysis.core.unanswerable.load_rationales`' table or its file)
    let ``delete_rationale`` and ``delete_random_words`` run (and ``"all"`` holds them).

    The model is loaded once, and only if some run is not finished; ``windowing``, ``decoding`` and
    ``execution`` go to every run. Results of probes run earlier into ``out`` on the same original run
    and seed are kept beside those run now. Returns the :class:`ProbeRuns` (what :func:`load_probes` gives
    back).

    Example::

        results = run_probes("../shared/models/minilm-l6-squad2-demo", "../shared/data/squad-v2-dev-half.json",
                             "runs/probes-demo", selection=Selection(titles="French_and_Indian_War,Force"),
                             probes="question_typo")
        probe_summary(results)
    """
    from ..core.io import write_json
    from ..runs.run import predict_run
    from ..runs.store import run_identity

    if isinstance(rationales, (str, Path)):
        from ..core.unanswerable import load_rationales

        rationales = load_rationales(rationales)
    names = probe_names(probes, rationales=rationales is not None)
    out = Path(out).expanduser()
    _refuse_foreign(out)
    _refuse_other_seed(out, seed, overwrite=overwrite)
    table = selection.load(data)

    from ..runs.calibration import run_calibration

    # chosen once for the original run: every probe's run shares its int8 model
    calibration = run_calibration(model, data, table, selection=selection, windowing=windowing, execution=execution)

    @cache
    def loaded(*, device: str, dtype: str):  # one load for every run (they share device, dtype and runtime)
        if not is_reference(model):
            return model
        from ..runs.engines import load_as

        return load_as(model, replace(execution, device=device, dtype=dtype), calibration)

    def predict(source, where, label):
        labelled = replace(execution, progress=label if execution.progress else False)
        return predict_run(model, source, where, loaded=loaded, overwrite=overwrite, windowing=windowing,
                           decoding=decoding, execution=labelled, calibration=calibration)

    out.mkdir(parents=True, exist_ok=True)
    original = predict(table, out / "original", "original")
    probed, record = _probed(table, names, seed, out, predict, rationales)
    settings = original.info["settings"]
    identity = {**run_identity(settings), "seed": seed}
    results, record = _with_earlier(out, probe_results(original, probed), record, identity)
    info = {"model": settings.get("model_given") or settings["model"], "data": settings["data"], "seed": seed,
            "original_run": "original", "identity": identity, "probes": record}
    write_atomic(out / "probes.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    write_json(out / "probes.json", info, indent=2)
    return ProbeRuns(out, results, info)


def _probed(table: pd.DataFrame, names: list, seed: int, out: Path, predict, rationales) -> tuple[dict, dict]:
    """Each probe's rewritten questions (``out/<probe>/questions.json``) and their run, and per probe how
    many source questions it took and skipped, by reason."""
    from ..core.data import write_squad

    probed, record = {}, {}
    for name in names:
        rewritten = apply_probe(table, name, seed=seed, rationales=rationales)
        record[name] = {"source_questions": len(table), "probed": len(rewritten),
                        "skipped": probe_skips(table, name, seed=seed, rationales=rationales)}
        if rewritten.empty:
            continue
        questions = write_squad(rewritten, out / name / "questions.json")
        probed[name] = (rewritten, predict(questions, out / name / "run", name))
    return probed, record


@dataclass(frozen=True)
class ProbeRuns:
    """What :func:`run_probes` made in ``path``: one row per probed question (``table``,
    :func:`~xdanalysis.analysis.probes.summary.probe_results`) and its ``probes.json`` (``record``: the
    model, data, seed, identity and, per probe, the questions it took and skipped). Every probe analysis
    takes it, or its table.

    Example::

        probes = load_probes("runs/probes-demo")
        probe_summary(probes); probes.original.scores()
    """

    path: Path
    table: pd.DataFrame = field(repr=False)
    record: dict = field(repr=False)

    @property
    def original(self):
        """The run of the original questions."""
        from ..runs.run import load_run

        return load_run(self.path / self.record.get("original_run", "original"))

    def run_of(self, probe: str):
        """The run of one probe's rewritten questions."""
        from ..runs.run import load_run

        if probe not in self.record.get("probes", {}):
            raise ValueError(f"{self.path}: no probe {probe!r}; it holds {list(self.record.get('probes', {}))}")
        return load_run(self.path / probe / "run")


def _refuse_foreign(out: Path) -> None:
    """A folder is a probe directory when it holds the original run (or its start) or a ``probes.json``
    this function wrote (with its identity and probes); a folder holding anything else, even files named
    like ours (a user's own ``probes.json``), is refused before anything is written there."""
    from ..runs.store import RUN_MARKERS, refuse_foreign

    if not out.is_dir():
        refuse_foreign(out, what="a probe directory")  # a file at --out is refused there
        return
    if any((out / "original" / m).exists() for m in RUN_MARKERS):
        return
    try:
        record = json.loads((out / "probes.json").read_text(encoding="utf-8"))
        ours = isinstance(record, dict) and {"identity", "probes", "seed"} <= set(record)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        ours = False
    if not ours:
        refuse_foreign(out, markers=("original/run.json",), what="a probe directory")


def _refuse_other_seed(out: Path, seed: int, *, overwrite: bool) -> None:
    """Probes drawn with another seed are other questions: refused before any file is rewritten, unless
    ``overwrite`` replaces them."""
    record = out / "probes.json"
    if overwrite or not record.exists():
        return
    try:
        earlier = json.loads(record.read_text(encoding="utf-8")).get("seed")
    except (OSError, json.JSONDecodeError, AttributeError):
        return  # a damaged record: the runs' own checks decide
    if earlier is not None and earlier != seed:
        from ..runs.store import RunMismatchError

        raise RunMismatchError(f"{out} holds probes drawn with seed {earlier}; seed {seed} rewrites other questions. Use "
                         "another --out, or pass --overwrite (overwrite=True) to replace them. Nothing was changed.")


def _with_earlier(out: Path, results: pd.DataFrame, record: dict, identity: dict) -> tuple[pd.DataFrame, dict]:
    """The probes run now, beside those run earlier into ``out`` on the same original run and seed
    (the ones run now replace theirs), in the probes' own order whatever was asked."""
    if (out / "probes.parquet").exists() and (out / "probes.json").exists():
        earlier = load_probes(out)
        if earlier.record.get("identity") == identity:
            kept = [n for n in earlier.record.get("probes", {}) if n not in record]
            record = {n: earlier.record["probes"][n] for n in kept} | record
            results = pd.concat([earlier.table[earlier.table["probe"].isin(kept)], results], ignore_index=True)
    order = {n: i for i, n in enumerate(PROBES)}
    results = results.sort_values("probe", key=lambda c: c.map(order), kind="stable", ignore_index=True)
    return results, {n: record[n] for n in sorted(record, key=order.get)}


def load_probes(path) -> "ProbeRuns":
    """The :class:`ProbeRuns` :func:`run_probes` wrote to ``path``."""
    path = Path(path)
    files = [path / "probes.parquet", path / "probes.json"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"{path}: no probe results ({', '.join(missing)} missing); run `xdanalysis probe "
                                f"--out {path}` first")
    return ProbeRuns(path, pd.read_parquet(files[0]), json.loads(files[1].read_text(encoding="utf-8")))
