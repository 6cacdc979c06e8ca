"""Robustness probes: rewrites with known expectations (no torch), their runs, and their summary."""

from .rewrites import PROBES, Probe, apply_probe, probe_pairs, probe_skips
from .summary import (
    probe_examples,
    probe_failures,
    probe_results,
    probe_summary,
    probe_summary_text,
    probe_transitions,
)

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['PROBES', 'Probe', 'apply_probe', 'probe_examples', 'probe_failures', 'probe_pairs', 'probe_results',
           'probe_skips', 'probe_summary', 'probe_summary_text', 'probe_transitions']
