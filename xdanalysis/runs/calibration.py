"""Which questions OpenVINO's int8 is calibrated on: questions outside the run's data, chosen the same way
every time (seeded), so that a run's int8 scales never saw the questions they are scored on."""

from __future__ import annotations

import warnings

import pandas as pd

from ..core.data import load_squad
from ..core.settings import OpenVINOSettings, WindowSettings
from ..model.loading import training_record
from ..model.openvino import Calibration

__all__ = ['CalibrationWarning', 'calibration_for', 'run_calibration']


class CalibrationWarning(UserWarning):
    """int8 calibrated on the run's own questions (there were no others to draw from)."""


def calibration_for(model, data, table: pd.DataFrame, *, settings: OpenVINOSettings = OpenVINOSettings(),
                    windowing: WindowSettings = WindowSettings(), split: str = "validation") -> Calibration:
    """The calibration questions of a run of ``model`` over ``table`` (selected from ``data``): up to
    ``settings.calibration_windows`` questions drawn with ``settings.seed`` from, in this order,
    ``settings.calibration_data``; the model's training articles in ``data`` (its ``training.json``); the
    articles of ``data`` the run leaves out. Never a question of the run, unless there is no other: then the
    run's own, with a :class:`CalibrationWarning` (and ``held_out=False`` in what the run records).
    """
    pool, source = _pool(model, data, table, settings=settings, split=split)
    if pool is not None:
        pool = pool[~pool["id"].isin(set(table["id"]))]
    held_out = pool is not None and len(pool) > 0
    if not held_out:
        pool = table
        source = "this run's own questions"
        warnings.warn("OpenVINO int8 is calibrated on this run's own questions: its data holds no others. Pass "
                      "questions outside the run (--calibration-data FILE, OpenVINOSettings(calibration_data=...)), "
                      "e.g. ../shared/data/squad-v2-train-first10.json", CalibrationWarning, stacklevel=3)
    sample = pool.sample(n=min(settings.calibration_windows, len(pool)), random_state=settings.seed)
    return Calibration(sample.reset_index(drop=True), source, held_out, windowing)


def _pool(model, data, table: pd.DataFrame, *, settings: OpenVINOSettings, split: str):
    """The questions to draw from and where they come from, in words (None: none but the run's)."""
    if settings.calibration_data is not None:
        return load_squad(settings.calibration_data), f"questions of {settings.calibration_data}"
    if isinstance(data, pd.DataFrame):
        return None, None
    whole = load_squad(data, split=split)
    trained = set(training_record(model).get("trained_on_titles") or [])
    if trained and whole["title"].isin(trained).any():
        return whole[whole["title"].isin(trained)], f"the model's training articles in {data}"
    return whole[~whole["title"].isin(set(table["title"]))], f"the articles of {data} this run leaves out"


def run_calibration(model, data, table: pd.DataFrame, *, selection, windowing: WindowSettings, execution):
    """The calibration a run of ``model`` (given by name) needs as ``execution`` says: :func:`calibration_for`
    for OpenVINO int8, None for every other runtime and dtype, and for a loaded model (made already)."""
    from ..core.common import is_reference

    if execution.runtime != "openvino" or execution.dtype != "int8" or not is_reference(model):
        return None
    return calibration_for(model, data, table, settings=execution.openvino, windowing=windowing,
                           split=selection.split)
