"""Run directories: a model's predictions over a dataset, computed once (locally or on Ray) and reused."""

from .engines import RayUnavailableError
from .run import Run, load_run, predict_run
from .store import RunBusyError, RunError, RunMismatchError, default_run_dir

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['RayUnavailableError', 'Run', 'RunBusyError', 'RunError', 'RunMismatchError',
           'default_run_dir', 'load_run', 'predict_run']
