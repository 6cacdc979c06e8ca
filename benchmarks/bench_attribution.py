"""What an attribution costs: integrated gradients (by internal batch size) and gradient x input,
per question, against one forward pass of the same window, in one run.

    python benchmarks/bench_attribution.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --titles French_and_Indian_War,Force --questions 6 \
        [--random-l12-h384] [--n-steps 50]

Prints the median seconds per question for each way, the ratio to a forward pass, the achieved
GFLOP/s of integrated gradients (a backward pass to the inputs counted as one forward: captum
asks autograd for the embedding gradients only, so no weight gradients are computed) against this machine's
fp32 matmul rate measured in the same run, and the peak RSS.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from bench_inference import matmul_gflops, window_flops  # noqa: E402
from timing import add_model_arguments, peak_rss_mb, timed_model, timed_ms  # noqa: E402

from xdanalysis.core.data import load_squad  # noqa: E402
from xdanalysis.interpret.attention import locate  # noqa: E402
from xdanalysis.interpret.attribution import Attributor, GradientXInput, IntegratedGradients  # noqa: E402
from xdanalysis.model.forward import forward_windows  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--data", required=True)
    parser.add_argument("--titles", default=None)
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--n-steps", type=int, default=50)
    args = parser.parse_args(argv)
    model, tokenizer = timed_model(args)
    table = load_squad(args.data, titles=args.titles, limit=args.questions)
    peak = matmul_gflops()
    print(f"{model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}; {len(table)} questions; "
          f"{torch.get_num_threads()} threads; fp32 matmul {peak:.1f} GFLOP/s (measured now)")
    ways = {"forward pass (one window)": None, "gradient x input": GradientXInput()}
    for batch in (None, 16, 8):
        ways[f"integrated gradients, {args.n_steps} steps, batch {batch or args.n_steps}"] = \
            IntegratedGradients(n_steps=args.n_steps, internal_batch_size=batch)
    times = {way: [] for way in ways}
    flops = []
    for row in table.itertuples():
        found = locate(model, tokenizer, row.question, row.context)
        length = len(found.windows.input_ids[found.window])
        flops.append(window_flops(model.config, length))
        for way, spec in ways.items():
            if spec is None:
                seconds = timed_ms(lambda: forward_windows(model, found.windows, [found.window])) / 1000
            else:
                attributor = Attributor(model, tokenizer, method=spec)
                seconds = timed_ms(lambda: attributor.attribute(row.question, row.context, target="null_odds")) / 1000
            times[way].append(seconds)
    base = statistics.median(times["forward pass (one window)"])
    print(f"\n{'way':52s}{'median s/question':>19s}{'x forward':>11s}")
    for way, values in times.items():
        print(f"{way:52s}{statistics.median(values):19.3f}{statistics.median(values) / base:11.1f}")
    best_ig = min((w for w in times if w.startswith("integrated")), key=lambda w: statistics.median(times[w]))
    # integrated gradients: n_steps forward + backward-to-inputs passes (~ one forward each), plus the
    # two target evaluations and the locating pass over every window (counted as one window)
    ig_flops = statistics.median(flops) * (2 * args.n_steps + 3)
    achieved = ig_flops / statistics.median(times[best_ig]) / 1e9
    print(f"\nbest integrated gradients ({best_ig}): {achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f}% of the "
          f"measured fp32 matmul rate; {statistics.median(flops) / 1e9:.2f} GFLOP per window (median)")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
