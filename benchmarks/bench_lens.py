"""What the layer lens costs against one plain forward pass over the same questions, in one run.

    python benchmarks/bench_lens.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --titles French_and_Indian_War,Force [--limit 200]

Prints the seconds of: the plain predictions (one forward pass per window, decoded once), the
logit lens (the same pass with hidden states, the head at every layer, decoded per layer), and
CKA of the model with itself; the ratios to the plain pass; peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import add_question_arguments, peak_rss_mb  # noqa: E402

from xdanalysis.core.data import load_squad  # noqa: E402
from xdanalysis.interpret.layers import layer_lens  # noqa: E402
from xdanalysis.interpret.representations import cka_map  # noqa: E402
from xdanalysis.model.loading import load_qa_model  # noqa: E402
from xdanalysis.model.predict import predict_table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_question_arguments(parser)
    args = parser.parse_args(argv)

    table = load_squad(args.data, titles=args.titles.split(",") if args.titles else None, limit=args.limit)
    model, tokenizer = load_qa_model(args.model)
    predict_table(model, tokenizer, table.head(4), progress=False)  # warm-up
    timings = {}
    started = time.perf_counter()
    predict_table(model, tokenizer, table, progress=False)
    timings["plain forward pass + decoding"] = time.perf_counter() - started
    started = time.perf_counter()
    lens = layer_lens(model, tokenizer, table, progress=False)
    timings[f"logit lens ({len(lens.per_layer)} layers decoded)"] = time.perf_counter() - started
    started = time.perf_counter()
    cka_map(model, model, tokenizer, table)
    timings["CKA map, model with itself (64 windows)"] = time.perf_counter() - started
    base = timings["plain forward pass + decoding"]
    print(f"{len(table)} questions, {args.model}")
    print(f"{'':48}{'seconds':>9}{'x plain':>9}")
    for name, seconds in timings.items():
        print(f"{name:48}{seconds:9.1f}{seconds / base:9.2f}")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
