"""Robustness probes: rewrites with known expectations (no torch), their runs, and their summary."""

from .rewrites import PROBES, Probe, apply_probe
from .run import load_probes, run_probes
from .summary import probe_examples, probe_failures, probe_summary, probe_summary_text, probe_transitions

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['PROBES', 'Probe', 'apply_probe', 'load_probes', 'probe_examples', 'probe_failures', 'probe_summary',
           'probe_summary_text', 'probe_transitions', 'run_probes']
