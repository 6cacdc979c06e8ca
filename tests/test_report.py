"""The static HTML report: every section, embedded figures, nothing fetched from a network."""

import re

import pytest

from xdanalysis.analysis.slices import ATTACHED_SLICES, SLICES
from xdanalysis.apps.cli import main
from xdanalysis.apps.report import REPORT_SECTIONS
from xdanalysis.core.settings import DecodingSettings, WindowSettings
from xdanalysis.core import Execution, Selection


@pytest.mark.slow
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
    built_in = [name for name in SLICES if name not in ATTACHED_SLICES]  # causes come with --causes
    shown = [name for name in SLICES if f"<h3>{name}</h3>" in page]
    left_out = [name for name in SLICES if f"<li><b>{name}</b>: " in page]
    assert sorted(shown + left_out) == sorted(built_in) and shown  # every slice shown, or said to be left out
    # every shown slice is two narrow tables (scores with intervals inside the cells, outcome mix)
    # (and more in "Where errors concentrate": one tree's leaves per side, and the top intersections)
    trees = page.count("<th>error rate held out (%)</th>")
    assert 1 <= trees <= 2 and trees + page.count("No error tree:") == 2  # each side: its tree, or why none
    assert "<h3>Answerable questions</h3>" in page and "<h3>Unanswerable questions</h3>" in page
    assert page.count("<div class='wide'><table") == 2 * len(shown) + trees + 1 and "F1 % [95% CI]" in page
    assert "error rate held out (%)" in page and "F1 against the majority gold (%)" in page
    images = re.findall(r'src="data:image/png;base64,', page)
    assert len(images) >= 5 + len(shown)
    assert not re.search(r'(src|href)="https?://', page)  # self-contained
    assert "threshold 0.0" in page and "Plausible-answer traps" in page
    from xdanalysis.runs.run import load_run

    scores = load_run(run).scores()  # the numbers on the page are the run's official scores
    summary = re.search(r"<pre>(.*?)</pre>", page, re.S).group(1)
    overall = next(line for line in summary.splitlines() if line.startswith("overall")).split()
    assert overall[1:4] == [f"{scores['exact']:.2f}", f"{scores['f1']:.2f}", str(scores["total"])]
    assert f"{scores['best_f1']:.2f}" in summary


def test_report_of_a_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "run.json is missing" in capsys.readouterr().err


def _unanswerable_only(tmp_path):
    import json

    from conftest import squad_payload

    payload = squad_payload()
    payload["data"] = payload["data"][1:]
    payload["data"][0]["paragraphs"][0]["qas"] = [q for q in payload["data"][0]["paragraphs"][0]["qas"]
                                                   if not q["answers"]]
    path = tmp_path / "unanswerable.json"
    path.write_text(json.dumps(payload))
    return path


@pytest.mark.slow
def test_report_of_degenerate_runs(tiny_model_dir, squad_file, tmp_path):
    import html

    from xdanalysis.apps.report import write_report
    from xdanalysis.runs.run import predict_run

    small = {"windowing": WindowSettings(64, 16), "execution": Execution(progress=False)}
    cases = {
        "no answerable question": predict_run(tiny_model_dir, _unanswerable_only(tmp_path), tmp_path / "a", **small),
        "one unanswerable question": predict_run(tiny_model_dir, _unanswerable_only(tmp_path), tmp_path / "b", selection=Selection(limit=1), **small),
        "always abstains": predict_run(tiny_model_dir, squad_file, tmp_path / "c", decoding=DecodingSettings(null_score_diff_threshold=-1e9),
                                       **small),
    }
    for label, run in cases.items():
        page = write_report(run, tmp_path / f"{label}.html", n_boot=50).read_text()
        scores = run.scores()
        assert f"{scores['exact']:.2f}" in page and f"{scores['f1']:.2f}" in page, label
        for section in REPORT_SECTIONS:
            assert f"id='{section.lower().replace(' ', '-')}'" in page
    # the report's "current" threshold is the run's own
    page = html.unescape((tmp_path / "always abstains.html").read_text())
    assert "-1e+09" in page
