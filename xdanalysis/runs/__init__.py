"""Run directories: a model's predictions over a dataset, computed once (locally or on Ray) and reused."""

from .engines import (
    ENGINES,
    RAY_CONNECT_SECONDS,
    RAY_MISSING,
    Computation,
    RayUnavailableError,
    connect_ray,
    model_config,
    predict_chunks_on_ray,
    require_ray,
    run_chunks_on_ray,
    teacher_chunks_on_ray,
)
from .run import Run, load_run, predict_run
from .store import (
    CHUNK_IDENTITY,
    RUN_MARKERS,
    RUN_OUTPUTS,
    RunBusyError,
    RunError,
    RunMismatchError,
    default_run_dir,
    locked,
    output_checksums,
    refuse_foreign,
    run_identity,
)

__all__ = ['CHUNK_IDENTITY', 'Computation', 'ENGINES', 'RAY_CONNECT_SECONDS', 'RAY_MISSING', 'RUN_MARKERS', 'RUN_OUTPUTS', 'RayUnavailableError', 'Run', 'RunBusyError', 'RunError', 'RunMismatchError', 'connect_ray', 'default_run_dir', 'load_run', 'locked', 'model_config', 'output_checksums', 'predict_chunks_on_ray', 'predict_run', 'refuse_foreign', 'require_ray', 'run_chunks_on_ray', 'run_identity', 'teacher_chunks_on_ray']
