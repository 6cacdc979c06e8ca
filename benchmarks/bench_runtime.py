"""Every runtime x dtype on the same windows, in one run: PyTorch (float32, bfloat16, ``--dtype int8``) against
OpenVINO (float32, bfloat16, int8 by NNCF with each ``--presets`` entry), as ``predict`` loads them.

    python benchmarks/bench_runtime.py --model ../shared/models/minilm-l6-squad2-demo \\
        --data ../shared/data/squad-v2-dev-half.json --titles French_and_Indian_War,Force
    python benchmarks/bench_runtime.py --model ../shared/models/minilm-l6-squad2-demo \\
        --data ../shared/data/squad-v2-dev-half.json --titles French_and_Indian_War,Force --limit 300 --random-l12-h384

Prints the CPU features found and the float32, bfloat16 and int8 matmul rates measured in the same run; the
one-off conversion and calibration time of each OpenVINO way (apart: it is cached); then per way, over
``--rounds`` interleaved rounds (each way loaded from its cache just before it is timed and dropped after, so
that no idle thread pool competes with it): windows/second (median), the ratio to PyTorch float32, the
achieved GFLOP/s, answers changed against PyTorch float32, HasAns F1 and NoAns accuracy with the paired 95%
bootstrap interval of their difference to float32, and the process's peak RSS so far; then batch
dependence: answers that differ between batches of 32 and one window at a time (on the first
``--batch-questions`` questions). With ``--random-l12-h384`` the model is a random one of XtremeDistil
l12-h384's shape (its answers and scores mean nothing; the timings do).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_compress import FEATURES, int8_linear_rate  # noqa: E402
from bench_inference import window_flops  # noqa: E402
from bench_precision import matmul_rate  # noqa: E402
from timing import add_question_arguments, peak_rss_mb, random_l12_h384  # noqa: E402

from xdanalysis.core.data import gold_answers, load_squad, title_list  # noqa: E402
from xdanalysis.core.metrics import question_scores  # noqa: E402
from xdanalysis.core.settings import OpenVINOSettings, WindowSettings  # noqa: E402
from xdanalysis.core.stats import paired_bootstrap  # noqa: E402
from xdanalysis.model.device import cpu_flags, fast_bfloat16  # noqa: E402
from xdanalysis.model.forward import run_windows  # noqa: E402
from xdanalysis.model.loading import load_qa_model  # noqa: E402
from xdanalysis.model.predict import decode_windows  # noqa: E402
from xdanalysis.model.windows import prepare_windows  # noqa: E402
from xdanalysis.runs.calibration import calibration_for  # noqa: E402


def ways(model: str, presets: list, calibration, windows_per_calibration: int) -> dict:
    """name -> a function loading that way (from the cache after its first load)."""
    found = {"torch fp32": lambda: load_qa_model(model, device="cpu")[0]}
    bf16 = fast_bfloat16("cpu")
    if bf16:
        found["torch bf16"] = lambda: load_qa_model(model, device="cpu", dtype="bfloat16")[0]
    found["torch int8 (--dtype int8)"] = lambda: load_qa_model(model, device="cpu", dtype="int8")[0]
    found["openvino fp32"] = lambda: load_qa_model(model, runtime="openvino")[0]
    if bf16:
        found["openvino bf16"] = lambda: load_qa_model(model, runtime="openvino", dtype="bfloat16")[0]
    for recipe in presets:
        settings = replace(RECIPES[recipe], calibration_windows=windows_per_calibration)
        found[f"openvino int8 ({recipe})"] = (lambda settings=settings: load_qa_model(
            model, runtime="openvino", dtype="int8", openvino=settings, calibration=calibration)[0])
    return found


# The int8 recipes compared (--presets): the default, every layer quantised, and asymmetric activations.
RECIPES = {"default": OpenVINOSettings(), "every layer": OpenVINOSettings(keep_float=()),
           "mixed": OpenVINOSettings(preset="mixed")}


def side_scores(table, answers: list) -> dict:
    """Per-question F1 (answerable) and EM (unanswerable: abstained) of ``answers``."""
    exact, f1 = question_scores(gold_answers(table), dict(zip(table["id"], answers)))
    answerable = ~table["is_impossible"].to_numpy(bool)
    ids = list(table["id"])
    return {"HasAns F1": np.array([f1[i] for i in ids])[answerable] * 100,
            "NoAns acc": np.array([exact[i] for i in ids])[~answerable] * 100}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_question_arguments(parser)
    parser.add_argument("--random-l12-h384", action="store_true",
                        help="time a random model of XtremeDistil l12-h384's shape (its answers mean nothing)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--presets", default="default,every layer,mixed",
                        help=f"the int8 recipes to compare, comma-separated, of: {', '.join(RECIPES)}")
    parser.add_argument("--calibration-windows", type=int, default=OpenVINOSettings().calibration_windows)
    parser.add_argument("--batch-questions", type=int, default=60)
    args = parser.parse_args(argv)
    flags = cpu_flags()
    found = [name for name, names in FEATURES.items() if any(f in flags for f in names)]
    threads = torch.get_num_threads()
    print(f"CPU features found: {', '.join(found) or 'none of ' + ', '.join(FEATURES)}; {threads} threads; torch "
          f"{torch.__version__}; openvino {__import__('openvino').__version__}")
    rates = {"float32": matmul_rate(torch.float32, "cpu", size=1024),
             "bfloat16": matmul_rate(torch.bfloat16, "cpu", size=1024, repeats=2), "int8": int8_linear_rate(1024)}
    print("matmul 1024^3 measured now (torch): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items()))

    os.environ.setdefault("XDANALYSIS_CACHE", tempfile.mkdtemp(prefix="bench-runtime-cache-"))
    model = args.model
    _, tokenizer = load_qa_model(model, device="cpu", allow_random_head=True)
    if args.random_l12_h384:  # saved, so that every runtime loads it as predict does
        model = tempfile.mkdtemp(prefix="bench-l12-h384-")
        random_l12_h384().save_pretrained(model)
        tokenizer.save_pretrained(model)
    titles = title_list(args.titles)
    table = load_squad(args.data, titles=titles, limit=args.limit)
    windows = prepare_windows(table, tokenizer)
    config = load_qa_model(model, device="cpu")[0].config
    flops = sum(window_flops(config, len(ids)) for ids in windows.input_ids)
    print(f"{'random l12-h384 shape' if args.random_l12_h384 else args.model}: {len(table)} questions, "
          f"{len(windows)} windows ({flops / len(windows) / 1e9:.2f} GFLOP each); cache {os.environ['XDANALYSIS_CACHE']}")
    calibration = calibration_for(args.model, args.data, table, windowing=WindowSettings())
    print(f"int8 calibration: {calibration.describe()}")

    loaders = ways(model, [p.strip() for p in args.presets.split(",") if p.strip()], calibration,
                   args.calibration_windows)
    print("\none-off conversion (and calibration), seconds:")
    for name, load in loaders.items():
        started = time.perf_counter()
        made = load()
        seconds = time.perf_counter() - started
        record = getattr(made, "record", {})
        print(f"  {name:42s} {seconds:6.1f} s first load" + (f" (convert+calibrate {record['seconds']} s)"
                                                              if record.get("converted_now") else ""))
        del made
        gc.collect()

    times: dict = {name: [] for name in loaders}
    logits: dict = {}
    for _ in range(args.rounds):
        for name, load in loaders.items():
            model_now = load()
            started = time.perf_counter()
            out = run_windows(model_now, windows, batch_size=32, progress=False)
            times[name].append(time.perf_counter() - started)
            logits.setdefault(name, out)
            del model_now
            gc.collect()
    report(table, windows, loaders, times, logits, flops, rates)
    print()
    batch_dependence(loaders, table.iloc[:args.batch_questions], tokenizer)
    return 0


def report(table, windows, loaders, times, logits, flops, rates) -> None:
    base = "torch fp32"
    answers = {name: [d["answer"] for d in decode_windows(table, windows, logits[name])] for name in loaders}
    scores = {name: side_scores(table, answers[name]) for name in loaders}
    base_time = statistics.median(times[base])
    print(f"\n{'way':42s}{'win/s':>8}{'x fp32':>8}{'GFLOP/s':>9}{'changed':>10}{'HasAns F1 (diff, 95% CI)':>32}"
          f"{'NoAns acc (diff, 95% CI)':>32}{'peak RSS MB':>13}")
    for name in loaders:
        median = statistics.median(times[name])
        changed = sum(a != b for a, b in zip(answers[name], answers[base]))
        cells = []
        for side in ("HasAns F1", "NoAns acc"):
            value = scores[name][side].mean()
            if name == base:
                cells.append(f"{value:.2f}")
                continue
            paired = paired_bootstrap(scores[base][side], scores[name][side], n_boot=1000, seed=0)
            cells.append(f"{value:.2f} ({paired['difference']:+.2f}, {paired['low']:+.2f} to {paired['high']:+.2f})")
        print(f"{name:42s}{len(windows) / median:8.1f}{base_time / median:8.2f}{flops / median / 1e9:9.1f}"
              f"{changed:>5d}/{len(table):<4d}{cells[0]:>32}{cells[1]:>32}{peak_rss_mb():13.0f}")
    fp32 = flops / statistics.median(times[base]) / 1e9
    print(f"\ntorch fp32 achieves {fp32:.0f} GFLOP/s of the {rates['float32']:.0f} its matmul reaches "
          f"({100 * fp32 / rates['float32']:.0f}%); rounds per way: {len(times[base])}")


def batch_dependence(loaders, table, tokenizer) -> None:
    """Answers that differ between batches of 32 windows and one window at a time."""
    windows = prepare_windows(table, tokenizer)
    print(f"batch dependence, batches of 32 vs one window at a time, first {len(table)} questions:")
    for name, load in loaders.items():
        model = load()
        runs = [[d["answer"] for d in decode_windows(table, windows, run_windows(model, windows, batch_size=size,
                                                                                  progress=False))]
                for size in (32, 1)]
        print(f"  {name:42s} {sum(a != b for a, b in zip(*runs))}/{len(table)} answers differ")
        del model
        gc.collect()


if __name__ == "__main__":
    raise SystemExit(main())
