"""The static HTML report: every section, embedded figures, nothing fetched from a network."""

import re

from xdanalysis.cli import main
from xdanalysis.errors import SLICES
from xdanalysis.report import REPORT_SECTIONS


def test_report_from_the_cli(tiny_model_dir, squad_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["evaluate", "--report", "--model", str(tiny_model_dir), "--data", str(squad_file),
                 "--out", str(run), "--max-seq-length", "64", "--doc-stride", "16"]) == 0
    assert f"report: {run / 'report.html'}" in capsys.readouterr().out
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(run), "--out", str(out), "--n-boot", "100"]) == 0
    page = out.read_text()
    for section in REPORT_SECTIONS:
        assert f"id='{section.lower().replace(' ', '-')}'" in page
    for name in SLICES:
        assert f"<h3>{name}</h3>" in page
    images = re.findall(r'src="data:image/png;base64,', page)
    assert len(images) >= 5 + len(SLICES)
    assert not re.search(r'(src|href)="https?://', page)  # self-contained
    assert "threshold 0.0" in page and "Plausible-answer traps" in page


def test_report_of_a_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "run.json is missing" in capsys.readouterr().err
