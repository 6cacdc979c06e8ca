"""Applications on top: ipywidgets explorers, the HTML report, notebook settings and the command line."""

from .cli import COMMANDS, MAKE_NAMES, build_parser, main
from .model_widgets import ATTENTION_VIEWS, AttentionExplorer, AttributionExplorer, LayerExplorer, SoftTargetExplorer
from .notebook import (
    LAB_SETTINGS,
    PREFIX,
    STUDENT_RECIPE,
    SettingError,
    Settings,
    WHOLE_NUMBERS,
    explain,
    notebook_settings,
    project_root,
    resolve_path,
)
from .report import (
    COMPRESSION_SECTION,
    PROBE_SECTION,
    REPORT_SECTIONS,
    compression_section,
    probes_of_run,
    write_compression_report,
    write_report,
)
from .widgets import CompressionExplorer, ErrorExplorer, ProbeExplorer, TransitionExplorer

__all__ = ['ATTENTION_VIEWS', 'AttentionExplorer', 'AttributionExplorer', 'COMMANDS', 'COMPRESSION_SECTION', 'CompressionExplorer', 'ErrorExplorer', 'LAB_SETTINGS', 'LayerExplorer', 'MAKE_NAMES', 'PREFIX', 'PROBE_SECTION', 'ProbeExplorer', 'REPORT_SECTIONS', 'STUDENT_RECIPE', 'SettingError', 'Settings', 'SoftTargetExplorer', 'TransitionExplorer', 'WHOLE_NUMBERS', 'build_parser', 'compression_section', 'explain', 'main', 'notebook_settings', 'probes_of_run', 'project_root', 'resolve_path', 'write_compression_report', 'write_report']
