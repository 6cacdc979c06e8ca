"""Applications on top: ipywidgets explorers, the HTML report, notebook settings and the command line."""

from .cli import main
from .model_widgets import AttentionExplorer, AttributionExplorer, LayerExplorer, SoftTargetExplorer
from .notebook import SettingError, Settings, notebook_settings
from .report import write_compression_report, write_report
from .widgets import CompressionExplorer, ErrorExplorer, ProbeExplorer, TransitionExplorer

# The names a user calls, listed by hand: plumbing stays importable from its own module.
__all__ = ['AttentionExplorer', 'AttributionExplorer', 'CompressionExplorer', 'ErrorExplorer', 'LayerExplorer',
           'ProbeExplorer', 'SettingError', 'Settings', 'SoftTargetExplorer', 'TransitionExplorer', 'main',
           'notebook_settings', 'write_compression_report', 'write_report']
