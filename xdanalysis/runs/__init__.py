"""Run directories: a model's predictions over a dataset, computed once (locally or on Ray) and reused."""

from .engines import (
    ENGINES,
    RAY_MISSING,
    model_config,
    predict_chunks_on_ray,
    require_ray,
    run_chunks_on_ray,
    teacher_chunks_on_ray,
)
from .run import Run, load_run, predict_run
from .store import RUN_OUTPUTS, RunBusyError, RunError, RunMismatchError, default_run_dir, run_identity

__all__ = ['ENGINES', 'RAY_MISSING', 'RUN_OUTPUTS', 'Run', 'RunBusyError', 'RunError', 'RunMismatchError', 'default_run_dir', 'load_run', 'model_config', 'predict_chunks_on_ray', 'predict_run', 'require_ray', 'run_chunks_on_ray', 'run_identity', 'teacher_chunks_on_ray']
