"""fp32 against reduced precision on the same questions, in one run (the speed side of --dtype).

    python benchmarks/bench_precision.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --titles French_and_Indian_War,Force
    python benchmarks/bench_precision.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --limit 600 --random-l12-h384

Times xdanalysis's prediction path (length-sorted, dynamic padding, batches capped by tokens) in
float32, with bfloat16 weights (what ``--dtype bfloat16`` does; float16 too on a GPU) over a sweep of ``max_batch_tokens`` for
the reduced precision, with float32 weights under bf16 autocast, and the run_qa way in float32 as the baseline. Prints questions/second,
the ratios, the achieved GFLOP/s against the fp32 and the bf16 matmul rates measured in the same
run, the official F1 and its change, the answers that change, and the peak RSS.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_inference import run_qa_style, window_flops  # noqa: E402
from timing import add_question_arguments, peak_rss_mb, random_l12_h384, timed_ms  # noqa: E402

from xdanalysis.core.data import gold_answers, load_squad  # noqa: E402
from xdanalysis.core.metrics import squad_v2_scores  # noqa: E402
from xdanalysis.model.device import resolve_device
from xdanalysis.model.forward import run_windows
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.predict import decode_windows
from xdanalysis.model.windows import prepare_windows


def matmul_rate(dtype, device: str, size: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)

    def once():
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()

    once()
    return 2 * size**3 / (min(timed_ms(once) for _ in range(repeats)) / 1000) / 1e9


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_question_arguments(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--random-l12-h384", action="store_true")
    parser.add_argument("--batch-tokens", default="1024,2048,4096,8192",
                        help="max_batch_tokens values tried in reduced precision (fp32 uses 2048)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    model, tokenizer = load_qa_model(args.model, allow_random_head=True, device=device)
    if args.random_l12_h384:
        model = random_l12_h384().to(device)
    table = load_squad(args.data, titles=args.titles, limit=args.limit)
    n = len(table)
    windows = prepare_windows(table, tokenizer)
    flops = sum(window_flops(model.config, len(ids)) for ids in windows.input_ids)
    rates = {"float32": matmul_rate(torch.float32, device), "bfloat16": matmul_rate(torch.bfloat16, device)}
    print(f"{'random l12-h384 shape' if args.random_l12_h384 else args.model}: {n} questions, {len(windows)} windows "
          f"({flops / len(windows) / 1e9:.2f} GFLOP each); device {device}, {torch.get_num_threads()} threads; "
          f"matmul 2048x2048 measured now: fp32 {rates['float32']:.0f}, bf16 {rates['bfloat16']:.0f} GFLOP/s")
    gold = gold_answers(table)
    models = {"float32": model, "bfloat16": copy.deepcopy(model).to(torch.bfloat16)}
    if device == "cuda":
        models["float16"] = copy.deepcopy(model).to(torch.float16)
    ways = [("float32", 2048)] + [(dtype, int(t)) for dtype in models if dtype != "float32"
                                  for t in args.batch_tokens.split(",")] + [("float32 + bf16 autocast", 2048)]
    rows = []
    for dtype, batch_tokens in ways:
        autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled="autocast" in dtype)
        weights = models[dtype.split()[0]]
        with autocast:
            run_windows(weights, windows, progress=False, max_batch_tokens=batch_tokens)  # warm-up
            started = time.perf_counter()
            logits = run_windows(weights, windows, progress=False, max_batch_tokens=batch_tokens)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        answers = [d["answer"] for d in decode_windows(table, windows, logits)]
        f1 = squad_v2_scores(gold, dict(zip(table["id"], answers)))["f1"]
        rows.append({"way": f"{dtype}, max_batch_tokens {batch_tokens}", "dtype": dtype, "seconds": seconds,
                     "answers": answers, "f1": f1})
        print(f"  {rows[-1]['way']}: {n / seconds:.1f} q/s, F1 {f1:.2f}, peak RSS {peak_rss_mb():.0f} MB", flush=True)
    started = time.perf_counter()
    qa_logits = run_qa_style(model, windows, 384, 32)
    qa_seconds = time.perf_counter() - started
    del qa_logits
    base = rows[0]
    print(f"\n{'way':40s}{'q/s':>8s}{'x fp32':>8s}{'GFLOP/s':>9s}{'% fp32 mm':>10s}{'% bf16 mm':>10s}"
          f"{'F1':>8s}{'ΔF1':>7s}{'changed':>9s}")
    for row in rows:
        achieved = flops / row["seconds"] / 1e9
        changed = sum(a != b for a, b in zip(row["answers"], base["answers"]))
        print(f"{row['way']:40s}{n / row['seconds']:8.1f}{base['seconds'] / row['seconds']:8.2f}{achieved:9.1f}"
              f"{100 * achieved / rates['float32']:9.0f}%{100 * achieved / rates['bfloat16']:9.0f}%"
              f"{row['f1']:8.2f}{row['f1'] - base['f1']:+7.2f}{changed:6d}/{n}")
    print(f"{'run_qa way, float32 (padded, input order)':40s}{n / qa_seconds:8.1f}{base['seconds'] / qa_seconds:8.2f}")
    best = max(rows[1:], key=lambda r: base["seconds"] / r["seconds"]) if len(rows) > 1 else base
    print(f"\nbest reduced precision: {best['way']}: {base['seconds'] / best['seconds']:.2f}x fp32; "
          f"fp32 is {qa_seconds / base['seconds']:.2f}x the run_qa way; peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
