"""Files written whole or not at all: atomic writes, JSON with ±inf null odds, peak memory."""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import secrets
import sys
from pathlib import Path

__all__ = ['NULL_ODDS_NO_SPAN', 'file_checksum', 'finite_odds', 'peak_rss_mb', 'read_null_odds', 'refuse_foreign_file',
           'write_atomic', 'write_json', 'write_text']


# +inf null odds (no admissible span: the model can only abstain) as valid JSON.
NULL_ODDS_NO_SPAN = sys.float_info.max


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def write_atomic(path, write) -> None:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary file beside it, which then
    replaces ``path`` in one step (a killed process leaves the old file or none, never half of one).
    The one way the package writes a file.

    The temporary file has a name of its own (``.<name>.<random>.tmp``), created exclusively, so that
    nothing planted beside ``path`` (a link at ``<name>.tmp``) can redirect the write; it is removed
    when ``write`` fails (a full disk leaves nothing behind), and the error names ``path``."""
    path = Path(path).expanduser()
    tmp = _exclusive_temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and str(path) not in str(exc):
            raise type(exc)(exc.errno, f"{exc.strerror or exc} while writing {path}", str(path)) from exc
        raise


def _exclusive_temporary(path: Path) -> Path:
    """A new empty file beside ``path`` that nobody else made (O_EXCL, links not followed); the
    permissions a plain ``open`` would give (the umask applies)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise type(exc)(exc.errno, f"{exc.strerror} while writing {path}", str(path)) from None
    raise FileExistsError(f"{path.parent}: could not create a temporary file for {path.name}")


def refuse_foreign_file(path, *, is_ours, what: str) -> Path:
    """``path`` expanded, if a command may write it: new, or an existing file ``is_ours(path)`` recognises
    as one it wrote before (a report, an eval file). Anything else there (a run's own predictions, a
    user's file, a directory) is refused before any work, naming it; nothing is overwritten."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; give a file name for {what}")
    if path.exists():
        try:
            ours = bool(is_ours(path))
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise FileExistsError(f"{path}: exists and is not {what} written by xdanalysis; nothing was "
                                  "overwritten: choose another file name, or move that file away first")
    return path


def file_checksum(path) -> dict:
    """``{"bytes", "sha256"}`` of a file: what is recorded when a file is written and compared before it
    is trusted again."""
    path = Path(path)
    with open(path, "rb") as handle:
        return {"bytes": os.fstat(handle.fileno()).st_size,
                "sha256": hashlib.file_digest(handle, "sha256").hexdigest()}


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
