"""Distillation speed and memory, in one run: training steps in fp32 and under bf16 autocast,
and the teacher-logit pass against `xdanalysis predict`'s forward pass on the same windows.

    python benchmarks/bench_distill.py --teacher ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --exclude-titles French_and_Indian_War,Force --steps 30

Prints training windows/s and achieved GFLOP/s (forward + backward counted as 3x the forward's
FLOPs at each window's real length) against the fp32 and bf16 matmul rates measured in the same
run, the loss of both precisions over the same steps (same seed, same batches), the teacher pass
against a plain forward pass, and peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_inference import window_flops  # noqa: E402
from timing import peak_rss_mb, timed_ms  # noqa: E402

from xdanalysis.core.data import load_squad  # noqa: E402
from xdanalysis.core.settings import WindowSettings  # noqa: E402
from xdanalysis.distill.config import DistillConfig  # noqa: E402
from xdanalysis.distill.teacher import teacher_logits  # noqa: E402
from xdanalysis.distill.train import distill
from xdanalysis.model.forward import run_windows  # noqa: E402
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.windows import prepare_windows
from xdanalysis.core import Execution, Selection


def matmul_gflops(dtype, size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = min(timed_ms(lambda: torch.mm(a, b)) for _ in range(repeats)) / 1000
    return 2 * size**3 / best / 1e9


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--exclude-titles", default=None)
    parser.add_argument("--limit", type=int, default=600, help="training questions (default 600)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=256)
    args = parser.parse_args(argv)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rates = {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}
    print(f"matmul 2048x2048: fp32 {rates['float32']:.0f} GFLOP/s, bf16 {rates['bfloat16']:.0f} GFLOP/s")

    model, tokenizer = load_qa_model(args.teacher)
    table = load_squad(args.data, exclude_titles=args.exclude_titles, limit=args.limit)
    windows = prepare_windows(table, tokenizer, WindowSettings(args.max_seq_length, 128))
    lengths = windows.lengths()
    print(f"{len(table)} questions, {len(windows)} windows of mean length {lengths.mean():.0f}")

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        teacher_logits((model, tokenizer), table, windows, tokenizer, cache_dir=scratch,
                       windowing=WindowSettings(args.max_seq_length, 128), execution=Execution(progress=False))
        teacher_seconds = time.perf_counter() - started
    started = time.perf_counter()
    run_windows(model, windows, progress=False)
    forward_seconds = time.perf_counter() - started
    print(f"teacher-logit pass: {len(windows) / teacher_seconds:.1f} windows/s; the same windows through "
          f"predict's forward pass: {len(windows) / forward_seconds:.1f} windows/s "
          f"(ratio {teacher_seconds / forward_seconds:.2f})")

    results = {}
    for precision in ("float32", "bfloat16"):
        with tempfile.TemporaryDirectory() as scratch:
            config = DistillConfig(max_steps=args.steps, batch_size=args.batch_size, precision=precision,
                                   windowing=WindowSettings(args.max_seq_length, 128))
            result = distill((model, tokenizer), args.data, Path(scratch) / "student", config=config, cache_dir=Path(scratch) / "cache", evaluate=False, selection=Selection(exclude_titles=args.exclude_titles, limit=args.limit), execution=Execution(progress=False))
        log = result.log
        # FLOPs of the student's steps: forward + backward = 3x forward, at real window lengths
        student_layers = len(result.info["identity"]["student_layers"])
        config = model.config.__class__(**{**model.config.to_dict(), "num_hidden_layers": student_layers})
        seen = int(log["windows"].sum())
        flops = 3 * seen * float(np.mean([window_flops(config, n) for n in lengths]))
        seconds = float(log["seconds"].iloc[-1])
        results[precision] = (seen / seconds, flops / seconds / 1e9, log)
        print(f"{precision:9}: {seen / seconds:6.1f} windows/s, {flops / seconds / 1e9:6.1f} GFLOP/s "
              f"({100 * flops / seconds / 1e9 / rates[precision]:.0f}% of its matmul rate); "
              f"loss first 5 steps {log['total'].iloc[:5].mean():.3f}, last 5 {log['total'].iloc[-5:].mean():.3f}")
    fp32, bf16 = results["float32"], results["bfloat16"]
    gap = np.abs(fp32[2]["total"].to_numpy() - bf16[2]["total"].to_numpy()).mean()
    print(f"\nbf16 autocast / fp32 training speed: {bf16[0] / fp32[0]:.2f}x; mean |loss difference| per step "
          f"{gap:.3f}")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
