"""Labs: experiments that run models and compare their runs against a reference, each with one pattern
(an out directory of cached, resumable runs; a comparison against the reference run): robustness
probes, the distillation lab, the compression lab, and the size/speed/accuracy trade-off."""

from .compress import CompressSettings, Compression, compress, verdict
from .distill import (
    LAB_RESULTS,
    LAB_STUDENTS,
    NAIVE_RECIPE,
    LabRecipe,
    lab_checkpoints,
    lab_questions,
    lab_results_table,
    lab_student,
    lab_table,
    read_lab_results,
)
from .probes import ProbeRuns, load_probes, run_probes
from .tradeoff import model_profile, tradeoff_table

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['LAB_RESULTS', 'LAB_STUDENTS', 'NAIVE_RECIPE', 'CompressSettings', 'Compression', 'LabRecipe', 'ProbeRuns',
           'compress', 'lab_checkpoints', 'lab_questions', 'lab_results_table', 'lab_student', 'lab_table',
           'load_probes', 'model_profile', 'read_lab_results', 'run_probes', 'tradeoff_table', 'verdict']
