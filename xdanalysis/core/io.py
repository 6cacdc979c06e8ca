"""Files written whole or not at all: atomic writes, JSON with ±inf null odds, peak memory."""

from __future__ import annotations

import json
import math
import os
import resource
import sys
from pathlib import Path

__all__ = ['write_text', 'NULL_ODDS_NO_SPAN', 'finite_odds', 'peak_rss_mb', 'read_null_odds', 'write_atomic', 'write_json']


# +inf null odds (no admissible span: the model can only abstain) as valid JSON.
NULL_ODDS_NO_SPAN = sys.float_info.max


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def write_atomic(path, write) -> None:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary file beside it, which then
    replaces ``path`` in one step (a killed process leaves the old file or none, never half of one).
    The one way the package writes a file."""
    path = Path(path).expanduser()
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_text(path, text: str) -> None:
    """``text`` into ``path``, atomically (see :func:`write_atomic`)."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path, payload, indent=None) -> None:
    """``payload`` as JSON (UTF-8, no NaN or infinity) into ``path``, atomically."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=indent, ensure_ascii=False, allow_nan=False)
    write_atomic(path, write)


def finite_odds(value: float) -> float:
    if math.isnan(value):
        raise ValueError("null odds are NaN: the model produced NaN logits")
    return NULL_ODDS_NO_SPAN if value == math.inf else (-NULL_ODDS_NO_SPAN if value == -math.inf else float(value))


def read_null_odds(path) -> dict:
    """``{id: null odds}`` from a run's ``null_odds.json``, the no-span stand-in read back as +inf.

    Example::

        odds = read_null_odds("runs/demo/null_odds.json")
    """
    with open(path, encoding="utf-8") as handle:
        payload = json.load(handle)
    return {k: math.inf if v >= NULL_ODDS_NO_SPAN else (-math.inf if v <= -NULL_ODDS_NO_SPAN else v)
            for k, v in payload.items()}
