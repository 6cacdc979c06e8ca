"""Scale-out on Ray Data: the chunks of a run computed by a pool of actors, each loading the model once.

The question table is sharded by question: a chunk is a range of whole questions, so a question's
windows never split across workers. Each actor loads the model once (``map_batches`` with an actor
pool; one GPU per actor on CUDA) and predicts one chunk per call with the same code as a local run
(:func:`xdanalysis.inference.predict_chunk`); the driver writes each chunk file as it arrives. The
run directory, resume and caching are therefore those of a local run, and so is the assembled run.

Ray is an optional extra: ``pip install 'xdanalysis[ray]'``. On a cluster, give its address
(``--ray-address ray://head:10001`` or ``auto`` inside a job) and a model and ``--out`` that every
node can read: a Hub id or a shared directory.
"""

from __future__ import annotations

import os

import pandas as pd

__all__ = ["predict_chunks_on_ray", "model_config", "require_ray", "RAY_MISSING"]

RAY_MISSING = ("engine 'ray' needs Ray, an optional extra: pip install 'xdanalysis[ray]' "
               "(or pip install 'ray[data]'), then run the same command again")


def require_ray():
    """Ray with Ray Data, or a ValueError that says how to install it (before anything is written)."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError(RAY_MISSING) from None
    return ray


def model_config(model):
    """The model's configuration only (what the driver checks before the workers load the weights),
    wrapped so that :func:`xdanalysis.inference.max_sequence_length` reads it like a model."""
    from types import SimpleNamespace

    from transformers import AutoConfig

    return SimpleNamespace(config=AutoConfig.from_pretrained(os.fspath(model)))


class _ChunkPredictor:
    """A Ray Data actor: loads the model once, then predicts one chunk of questions per call."""

    def __init__(self, model, table_ref, chunk_size, decoding, batch_size, device, dtype, allow_random_head):
        import ray

        from .inference import load_qa_model

        self.model, self.tokenizer = load_qa_model(model, allow_random_head=allow_random_head, device=device,
                                                   dtype=dtype)
        self.table = ray.get(table_ref)
        self.chunk_size, self.decoding, self.batch_size = chunk_size, decoding, batch_size

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from .inference import predict_chunk

        frames = []
        for c in batch["chunk"]:
            part = self.table.iloc[int(c) * self.chunk_size: (int(c) + 1) * self.chunk_size]
            frame, seconds = predict_chunk(self.model, self.tokenizer, part, decoding=self.decoding,
                                           batch_size=self.batch_size)
            frames.append(frame.assign(_chunk=int(c), _seconds=seconds))
        return pd.concat(frames, ignore_index=True)


def predict_chunks_on_ray(model, table: pd.DataFrame, chunks, *, chunk_size: int, decoding: dict, batch_size: int,
                          device: str, dtype: str, allow_random_head: bool = False, address: str | None = None,
                          workers: int | None = None):
    """Yield ``(chunk, frame, seconds)`` for every chunk in ``chunks``, as the actors finish them.

    Connects to the cluster at ``address`` (default: a local Ray, started here and shut down after);
    ``workers`` actors (default: one per GPU on CUDA, else 2).
    """
    import logging

    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    quiet = logging.getLogger("ray.data")
    saved = (context.enable_progress_bars, quiet.level)
    context.enable_progress_bars = False  # the run's own tqdm bar counts the questions
    quiet.setLevel(logging.WARNING)
    try:
        gpus = 1 if device == "cuda" else 0
        workers = workers or (max(1, int(ray.cluster_resources().get("GPU", 1))) if gpus else 2)
        table_ref = ray.put(table.reset_index(drop=True))
        items = ray.data.from_items([{"chunk": int(c)} for c in chunks], override_num_blocks=len(chunks))
        results = items.map_batches(
            _ChunkPredictor, batch_size=1, batch_format="pandas", concurrency=workers, num_gpus=gpus,
            fn_constructor_args=(os.fspath(model), table_ref, chunk_size, decoding, batch_size, device, dtype,
                                 allow_random_head))
        for batch in results.iter_batches(batch_size=None, batch_format="pandas"):
            for c, part in batch.groupby("_chunk", sort=False):
                seconds = float(part["_seconds"].iloc[0])
                yield int(c), part.drop(columns=["_chunk", "_seconds"]).reset_index(drop=True), seconds
    finally:
        context.enable_progress_bars, level = saved
        quiet.setLevel(level)
        if started_here:
            ray.shutdown()
