"""Probe runs: one run per rewrite, one model load, cached, and their per-question results."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pandas as pd

from ...core.common import is_reference, table_of
from ...core.io import write_atomic
from ...core.settings import DecodingSettings, WindowSettings
from .rewrites import PROBES, apply_probe, expectation_met, probe_names

__all__ = ['load_probes', 'probe_results', 'run_probes']


_RESULT_SIDES = ["question", "context", "answer_texts", "answer", "outcome", "exact", "f1", "null_odds"]


def probe_results(original, probed: dict) -> pd.DataFrame:
    """One row per probed question: the probe, its expectation, the original and the probed
    question, context, gold, answer, outcome, EM/F1 and null odds, and ``met``.

    ``original`` is the run (or run table) of the source questions; ``probed`` maps a probe's name
    to ``(probe_table, run)`` where ``probe_table`` is :func:`apply_probe`'s result and ``run``
    its run.
    """
    from ..outcomes import outcomes

    base = outcomes(table_of(original)).set_index("id")
    frames = []
    for name, (probe_table, run) in probed.items():
        table = outcomes(table_of(run)).set_index("id")
        meta = probe_table.set_index("id")[["source_id", "expect", "note"]]
        missing = sorted(set(meta.index) - set(table.index))
        if missing:
            raise ValueError(f"the run of probe {name} lacks {len(missing)} of its questions, e.g. {missing[:3]}")
        frame = pd.DataFrame({"probe": name, "id": meta.index, "source_id": meta["source_id"].to_numpy(),
                              "title": base.loc[meta["source_id"], "title"].to_numpy(),
                              "has_answer": base.loc[meta["source_id"], "has_answer"].to_numpy(dtype=bool),
                              "expect": meta["expect"].to_numpy(), "note": meta["note"].to_numpy()})
        for column in _RESULT_SIDES:
            frame[f"original_{column}"] = base.loc[meta["source_id"], column].to_numpy()
            frame[f"probed_{column}"] = table.loc[meta.index, column].to_numpy()
        frame["met"] = [expectation_met(e, a, b, x) for e, a, b, x in zip(
            frame["expect"], frame["original_answer"], frame["probed_answer"], frame["probed_exact"])]
        frames.append(frame)
    columns = ["probe", "id", "source_id", "title", "has_answer", "expect", "note"] + \
        [f"{side}_{c}" for c in _RESULT_SIDES for side in ("original", "probed")] + ["met"]
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    for side in ("original", "probed"):
        result[f"{side}_outcome"] = result[f"{side}_outcome"].astype(str)
    return result[columns]


def run_probes(model, data, out, *, probes="all", seed: int = 0, split: str = "validation", limit: int | None = None,
               titles=None, exclude_titles=None, table: pd.DataFrame | None = None, allow_random_head: bool = False,
               progress: bool = True, overwrite: bool = False, device: str | None = None, dtype: str | None = None,
               windowing: WindowSettings = WindowSettings(), decoding: DecodingSettings = DecodingSettings(),
               batch_size: int = 32, engine: str = "local", ray_address: str | None = None,
               workers: int | None = None) -> pd.DataFrame:
    """Run ``model`` on the original questions and on every probe's rewrite; write ``out/``:

    - ``original/``  the run of the source questions; ``<probe>/questions.json`` (official
      format) and ``<probe>/run/``, each a normal run (cached and resumable);
    - ``probes.parquet``  :func:`probe_results`; ``probes.json``  the settings and, per probe,
      how many source questions it took and how many it skipped, by reason.

    The model is loaded once, and only if some run is not finished. Results of probes run
    earlier into ``out`` on the same original run and seed are kept beside those run now. Returns
    the results, with the ``probes.json`` record in ``.attrs`` (what :func:`load_probes` gives back).

    The length is the keywords handed through to every :func:`predict_run` of the probes.

    Example::

        results = run_probes("../shared/models/minilm-l6-squad2-demo", "../shared/data/squad-v2-dev-half.json",
                             "runs/probes-demo", titles="French_and_Indian_War,Force", probes="question_typo")
        probe_summary(results)
    """
    from ...core.data import load_squad, write_squad
    from ...core.io import write_json
    from ...runs.run import predict_run
    from ...runs.store import run_identity

    names = probe_names(probes)
    out = Path(out).expanduser()
    _refuse_foreign(out)
    _refuse_other_seed(out, seed, overwrite=overwrite)
    if table is None:
        table = load_squad(data, split=split, limit=limit, titles=titles, exclude_titles=exclude_titles)
    elif limit is not None:
        table = table.iloc[:limit].reset_index(drop=True)

    @cache
    def loaded(*, device: str, dtype: str):  # one load for every run (they share device and dtype)
        if not is_reference(model):
            return model
        from ...model.loading import load_qa_model

        return load_qa_model(model, allow_random_head=allow_random_head, device=device, dtype=dtype)

    def predict(source, where, label, given_table=None):
        return predict_run(model, source, where, table=given_table, loaded=loaded, progress=progress,
                           progress_label=label, allow_random_head=allow_random_head, overwrite=overwrite,
                           device=device, dtype=dtype, windowing=windowing, decoding=decoding, batch_size=batch_size,
                           engine=engine, ray_address=ray_address, workers=workers)

    out.mkdir(parents=True, exist_ok=True)
    original = predict(data, out / "original", "original", table)
    probed, record = {}, {}
    for name in names:
        rewritten = apply_probe(table, name, seed=seed)
        record[name] = {"source_questions": len(table), "probed": len(rewritten),
                        "skipped": rewritten.attrs["skipped"]}
        if rewritten.empty:
            continue
        questions = write_squad(rewritten, out / name / "questions.json")
        probed[name] = (rewritten, predict(questions, out / name / "run", name))
    settings = original.info["settings"]
    identity = {**run_identity(settings), "seed": seed}
    results, record = _with_earlier(out, probe_results(original, probed), record, identity)
    info = {"model": settings.get("model_given") or settings["model"], "data": settings["data"], "seed": seed,
            "original_run": "original", "identity": identity, "probes": record}
    write_atomic(out / "probes.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    write_json(out / "probes.json", info, indent=2)
    results.attrs.update(info)
    results.attrs["path"] = str(out)
    return results


def _refuse_foreign(out: Path) -> None:
    """A folder is a probe directory when it holds the original run (or its start) or a ``probes.json``
    this function wrote (with its identity and probes); a folder holding anything else, even files named
    like ours (a user's own ``probes.json``), is refused before anything is written there."""
    from ...runs.store import RUN_MARKERS, refuse_foreign

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
        from ...runs.store import RunMismatchError

        raise RunMismatchError(f"{out} holds probes drawn with seed {earlier}; seed {seed} rewrites other questions. Use "
                         "another --out, or pass --overwrite (overwrite=True) to replace them. Nothing was changed.")


def _with_earlier(out: Path, results: pd.DataFrame, record: dict, identity: dict) -> tuple[pd.DataFrame, dict]:
    """The probes run now, beside those run earlier into ``out`` on the same original run and seed
    (the ones run now replace theirs), in the probes' own order whatever was asked."""
    if (out / "probes.parquet").exists() and (out / "probes.json").exists():
        earlier = load_probes(out)
        if earlier.attrs.get("identity") == identity:
            kept = [n for n in earlier.attrs.get("probes", {}) if n not in record]
            record = {n: earlier.attrs["probes"][n] for n in kept} | record
            results = pd.concat([earlier[earlier["probe"].isin(kept)], results], ignore_index=True)
    order = {n: i for i, n in enumerate(PROBES)}
    results = results.sort_values("probe", key=lambda c: c.map(order), kind="stable", ignore_index=True)
    return results, {n: record[n] for n in sorted(record, key=order.get)}


def load_probes(path) -> pd.DataFrame:
    """The results :func:`run_probes` wrote to ``path``, with its ``probes.json`` in ``.attrs``."""
    path = Path(path)
    files = [path / "probes.parquet", path / "probes.json"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"{path}: no probe results ({', '.join(missing)} missing); run `xdanalysis probe "
                                f"--out {path}` first")
    results = pd.read_parquet(files[0])
    results.attrs.update(json.loads(files[1].read_text(encoding="utf-8")))
    results.attrs["path"] = str(path)
    return results
