"""The teacher-logit pass on Ray Data: a pool of actors, each loading the teacher once and computing one
chunk of logits per call with :func:`xdanalysis.distill.teacher.teacher_chunk`, on top of the runs' generic
:func:`xdanalysis.runs.engines.run_chunks_on_ray` (the same cache files as a local pass)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..core.settings import Execution, WindowSettings
from ..runs.engines import ray_session, run_chunks_on_ray

__all__ = ['teacher_chunks_on_ray']


class _TeacherChunk:
    """A Ray Data actor: loads the teacher once, then computes one chunk of teacher logits per call."""

    def __init__(self, teacher, shared_ref, device, compute):
        import ray

        from ..model.loading import load_qa_model

        self.teacher, self.tokenizer = load_qa_model(teacher, device=device)
        self.shared = ray.get(shared_ref)
        self.compute = compute  # teacher.teacher_chunk: handed in, so this module never imports teacher back

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        shared, rows = self.shared, []
        for c in batch["chunk"]:
            indices = list(range(int(c) * shared["chunk_windows"],
                                 min(len(shared["windows"].input_ids), (int(c) + 1) * shared["chunk_windows"])))
            for start, end in self.compute(self.teacher, self.tokenizer, shared["table"], shared["windows"], indices,
                                            same=shared["same"], windowing=shared["windowing"],
                                            batch_size=shared["batch_size"]):
                rows.append({"_chunk": int(c), "start": start.tolist(), "end": end.tolist()})
        return pd.DataFrame(rows)


def teacher_chunks_on_ray(teacher, table: pd.DataFrame, windows, chunks, *, compute, chunk_windows: int, same: bool,
                          windowing: WindowSettings, execution: Execution):
    """Yield ``(chunk, [(start, end) per window])`` as the actors finish each chunk (Ray at
    ``execution.ray_address``, default a local one started here; ``execution.workers`` actors); ``compute``
    computes one chunk (:func:`xdanalysis.distill.teacher.teacher_chunk`)."""
    with ray_session(execution.ray_address) as ray:
        shared = ray.put({"table": table.reset_index(drop=True), "windows": windows, "chunk_windows": chunk_windows,
                          "same": same, "windowing": windowing, "batch_size": execution.batch_size})
        for c, frame in run_chunks_on_ray(_TeacherChunk, (os.fspath(teacher), shared, execution.device, compute),
                                          chunks,
                                          device=execution.device, workers=execution.workers):
            yield c, [(np.asarray(s, dtype=np.float32), np.asarray(e, dtype=np.float32))
                      for s, e in zip(frame["start"], frame["end"])]
