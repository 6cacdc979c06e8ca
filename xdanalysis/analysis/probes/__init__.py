"""Robustness probes: rewrites with known expectations (no torch), their runs, and their summary."""

from .rewrites import EXPECTATIONS, PROBE_COLUMNS, PROBES, Probe, apply_probe, expectation_met, probe_names
from .run import load_probes, probe_results, run_probes
from .summary import FAILURE_KINDS, probe_examples, probe_failures, probe_summary, probe_summary_text

__all__ = ['EXPECTATIONS', 'FAILURE_KINDS', 'PROBES', 'PROBE_COLUMNS', 'Probe', 'apply_probe', 'expectation_met', 'load_probes', 'probe_examples', 'probe_failures', 'probe_names', 'probe_results', 'probe_summary', 'probe_summary_text', 'run_probes']
