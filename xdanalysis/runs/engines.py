"""Scale-out on Ray Data: the chunks of a run computed by a pool of actors, each loading the model once.

The question table is sharded by question: a chunk is a range of whole questions, so a question's
windows never split across workers. Each actor loads the model once (``map_batches`` with an actor
pool; one GPU per actor on CUDA) and predicts one chunk per call with the same code as a local run
(:func:`xdanalysis.model.predict.predict_chunk`); the driver writes each chunk file as it arrives. The
run directory, resume and caching are therefore those of a local run, and so is the assembled run.

Ray is an optional extra: ``pip install 'xdanalysis[ray]'``. On a cluster, give its address
(``--ray-address ray://head:10001`` or ``auto`` inside a job) and a model and ``--out`` that every
node can read: a Hub id or a shared directory.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from ..core.common import is_reference
from ..core.settings import DecodingSettings, Execution, WindowSettings

__all__ = ['RAY_CONNECT_SECONDS', 'RAY_MISSING', 'Computation', 'RayUnavailableError', 'connect_ray', 'model_config',
           'predict_chunks_on_ray', 'ray_session', 'require_ray', 'run_chunks_on_ray']


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
    wrapped so that :func:`xdanalysis.model.loading.max_sequence_length` reads it like a model."""
    from types import SimpleNamespace

    from transformers import AutoConfig

    from ..model.loading import require_model

    require_model(os.fspath(model))  # the same message as a local run: how to point at local files
    return SimpleNamespace(config=AutoConfig.from_pretrained(os.fspath(model)))


class _ChunkPredictor:
    """A Ray Data actor: loads the model once, then predicts one chunk of questions per call."""

    def __init__(self, model, table_ref, windowing: WindowSettings, decoding: DecodingSettings, execution: Execution,
                 calibration=None):
        import ray

        self.model, self.tokenizer = load_as(model, execution, calibration)
        self.table = ray.get(table_ref)
        self.windowing, self.decoding, self.execution = windowing, decoding, execution

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from ..model.predict import predict_chunk

        frames = []
        size = self.execution.chunk_size
        for c in batch["chunk"]:
            part = self.table.iloc[int(c) * size: (int(c) + 1) * size]
            frame, seconds = predict_chunk(self.model, self.tokenizer, part, windowing=self.windowing,
                                           decoding=self.decoding, batch_size=self.execution.batch_size)
            frames.append(frame.assign(_chunk=int(c), _seconds=seconds))
        return pd.concat(frames, ignore_index=True)


# How long a cluster address may take to answer before the run gives up (no data is written before).
RAY_CONNECT_SECONDS = 15


class RayUnavailableError(ValueError):
    """Ray could not be started or reached; says what failed and what to do."""


def _check_reachable(address: str, seconds: float = RAY_CONNECT_SECONDS) -> None:
    """A cluster address answers within ``seconds`` (a TCP connection to its host and port), or a
    RayUnavailableError: a wrong address is said at once instead of waiting on Ray's own retries."""
    import socket
    from urllib.parse import urlsplit

    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise RayUnavailableError(f"--ray-address {address!r} is not an address: give HOST:PORT (inside the cluster, "
                                  "e.g. head:6379), ray://HOST:PORT (Ray Client, e.g. ray://head:10001), or auto")
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except OSError as exc:
        raise RayUnavailableError(
            f"Ray at {address} did not answer within {seconds:g} s ({exc}); check the address and that the cluster "
            "is up, or leave --ray-address unset to start a local Ray. Nothing was written.") from None


@contextmanager
def _quiet_ray():
    """Ray's deprecation notices about its own settings and its start-up chatter are not the user's business."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def connect_ray(address: str | None) -> bool:
    """Connect to Ray at ``address`` (checked to answer first, bounded) or start a local Ray; True when
    this call started the connection (the caller then shuts it down). Failures are RayUnavailableError
    messages, never Ray's tracebacks."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    if address:
        _check_client(address)
        _check_reachable(address)
    try:
        with _quiet_ray():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # Ray raises many kinds (timeouts, connection errors, bad addresses)
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        where = f"connect to Ray at {address}" if address else "start a local Ray"
        raise RayUnavailableError(
            f"could not {where}: {type(exc).__name__}: {first}. On a busy machine, run the same command again "
            "(finished chunks are kept), or use --engine local.") from None
    return True


def _check_client(address: str) -> None:
    """A ``ray://`` address needs Ray's client package (grpcio): said before any connection is tried."""
    import importlib.util

    if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise RayUnavailableError(f"{address}: a ray:// address needs Ray's client package, which is not installed "
                                  "here: pip install 'ray[client]' (the 'xdanalysis[ray]' extra includes it), or "
                                  "give the cluster's address without ray:// from a machine inside the cluster")


@contextmanager
def ray_session(address: str | None):
    """Ray, connected to ``address`` or to a local Ray started here (and shut down after); an
    existing connection is used as it is."""
    ray = require_ray()
    started_here = connect_ray(address)
    try:
        with _quiet_ray():
            yield ray
    finally:
        if started_here:
            ray.shutdown()


def run_chunks_on_ray(actor, constructor_args: tuple, chunks, *, device: str, address: str | None = None,
                      workers: int | None = None):
    """Yield ``(chunk, frame)`` as a pool of ``actor`` instances (Ray Data ``map_batches``, built
    with ``constructor_args``) finishes each chunk; the frame is what the actor returned for it,
    without its ``_chunk`` column. Connects to ``address`` (default: a local Ray, started here and
    shut down after); ``workers`` actors (default: one per GPU on CUDA, else 2)."""

    with ray_session(address) as ray:
        context = ray.data.DataContext.get_current()
        saved = context.enable_progress_bars
        context.enable_progress_bars = False  # the caller's own tqdm bar counts the work
        try:
            yield from _map_chunks(ray, actor, constructor_args, chunks, device=device, workers=workers)
        finally:
            context.enable_progress_bars = saved


def _map_chunks(ray, actor, constructor_args, chunks, *, device, workers):
    gpus = 1 if device == "cuda" else 0
    workers = workers or (max(1, int(ray.cluster_resources().get("GPU", 1))) if gpus else 2)
    items = ray.data.from_items([{"chunk": int(c)} for c in chunks], override_num_blocks=len(chunks))
    import warnings

    with warnings.catch_warnings():
        # max_restarts=0: a lost actor is not restarted (a killed run resumes from its chunks instead), and Ray
        # stops logging that restarts could fail (ray-project/ray#57733). Ray 2.60 has no named parameter for
        # it, so it goes through the remote arguments, whose deprecation notice is Ray's business.
        warnings.filterwarnings("ignore", message=r".*ray_remote_args.* is deprecated")
        results = items.map_batches(actor, batch_size=1, batch_format="pandas",  # a fixed pool of actors
                                    compute=ray.data.ActorPoolStrategy(size=workers), num_gpus=gpus,
                                    fn_constructor_args=constructor_args, max_restarts=0)
    for batch in results.iter_batches(batch_size=None, batch_format="pandas"):
        for c, part in batch.groupby("_chunk", sort=False):
            yield int(c), part.drop(columns=["_chunk"]).reset_index(drop=True)


def predict_chunks_on_ray(model, table: pd.DataFrame, chunks, *, windowing: WindowSettings, decoding: DecodingSettings,
                          execution: Execution, calibration=None):
    """Yield ``(chunk, frame, seconds)`` for every chunk of a run, as the actors finish them (``execution``
    with its device and dtype resolved)."""
    with ray_session(execution.ray_address) as ray:
        table_ref = ray.put(table.reset_index(drop=True))
        arguments = (os.fspath(model), table_ref, windowing, decoding, execution, calibration)
        for c, frame in run_chunks_on_ray(_ChunkPredictor, arguments, chunks, device=execution.device,
                                          workers=execution.workers):
            yield c, frame.drop(columns=["_seconds"]), float(frame["_seconds"].iloc[0])


def load_as(model, execution: Execution, calibration=None):
    """``(model, tokenizer)`` of checkpoint ``model``, loaded as ``execution`` says (device, dtype, int8,
    runtime); ``calibration``: OpenVINO int8's calibration questions."""
    from ..model.loading import load_qa_model

    return load_qa_model(model, allow_random_head=execution.allow_random_head, device=execution.device,
                         dtype=execution.dtype, int8=execution.int8, runtime=execution.runtime,
                         openvino=execution.openvino, calibration=calibration)


@dataclass
class Computation:
    """How the missing chunks of a run are computed: the model (loaded once, here or by Ray's
    workers), its settings, and the engine."""

    model: object
    loaded: object
    windowing: WindowSettings
    decoding: DecodingSettings
    execution: Execution  # device and dtype resolved
    calibration: object = None  # OpenVINO int8's calibration questions (xdanalysis.model.openvino.Calibration)

    @contextmanager
    def prepared(self, name: str):
        """Load the model (for Ray: only its configuration, and Ray connected) and check the windows fit
        it; Ray, when connected here, is shut down after the block."""
        from ..model import loading
        from ..model.runtime import model_runtime

        started = False
        run = self.execution
        if run.engine == "ray":  # the workers load the model; here only its configuration is read
            self.pair = (model_config(self.model), None)
            started = connect_ray(run.ray_address)
        elif self.loaded is not None:
            self.pair = self.loaded(device=run.device, dtype=run.dtype) if callable(self.loaded) else self.loaded
        elif is_reference(self.model):
            self.pair = load_as(self.model, run, self.calibration)
        else:
            self.pair = self.model
        if run.engine != "ray" and model_runtime(self.pair[0]) != run.runtime:
            raise ValueError(f"the model loaded for this run runs on {model_runtime(self.pair[0])!r}, not the runtime "
                             f"{run.runtime!r} the run is recorded with; load it with runtime={run.runtime!r}")
        try:
            limit = loading.max_sequence_length(self.pair[0])
            if limit is not None and self.windowing.max_seq_length > limit:
                raise ValueError(f"max_seq_length {self.windowing.max_seq_length} is longer than the model takes "
                                 f"({name}: {limit} positions); use --max-seq-length {limit} or less")
            yield
        finally:
            if started:
                import ray

                ray.shutdown()

    def chunks(self, table: pd.DataFrame, pending: list):
        """``(chunk index, frame, seconds)`` for each pending chunk, as each is done."""
        if self.execution.engine == "ray":
            return predict_chunks_on_ray(self.model, table, pending, windowing=self.windowing, decoding=self.decoding,
                                         execution=self.execution, calibration=self.calibration)
        from ..model import predict

        model, tokenizer = self.pair
        size = self.execution.chunk_size
        return ((c, *predict.predict_chunk(model, tokenizer, table.iloc[c * size: (c + 1) * size],
                                           windowing=self.windowing, decoding=self.decoding,
                                           batch_size=self.execution.batch_size)) for c in pending)
