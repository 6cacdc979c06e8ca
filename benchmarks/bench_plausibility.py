"""What plausibility against SQuAD2-CR's rationales costs: gradient x input, attention and random on every
rationale question of the chosen articles, integrated gradients on a sample, against the plain prediction
of the same questions (one forward pass per window, the run's cost), in one run.

    python benchmarks/bench_plausibility.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev.json --rationales ../shared/data/squad2-cr/rationales-dev.tsv \
        --causes ../shared/data/squad2-cr/causes-dev.tsv --unseen [--ig-questions 200] [--n-steps 16]

``--unseen`` leaves out the articles the model's ``training.json`` says it trained on. Prints, per way, the
seconds, seconds per question and the ratio to the plain prediction of the same questions; the peak RSS; and
the plausibility summary (AUPRC, token F1, IOU F1 with bootstrap intervals) per method.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from timing import peak_rss_mb  # noqa: E402

from xdanalysis.analysis.rationales import against_random, plausibility_summary, rationale_agreement  # noqa: E402
from xdanalysis.core.data import Selection  # noqa: E402
from xdanalysis.core.unanswerable import load_rationales  # noqa: E402
from xdanalysis.interpret.attribution import IntegratedGradients  # noqa: E402
from xdanalysis.interpret.plausibility import explain_rationales  # noqa: E402
from xdanalysis.model.device import cpu_flags  # noqa: E402
from xdanalysis.model.loading import load_qa_model, training_record  # noqa: E402
from xdanalysis.model.predict import predict_table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--rationales", required=True)
    parser.add_argument("--causes", default=None)
    parser.add_argument("--unseen", action="store_true", help="leave out the model's training articles")
    parser.add_argument("--questions", type=int, default=None, help="at most this many rationale questions")
    parser.add_argument("--ig-questions", type=int, default=200)
    parser.add_argument("--n-steps", type=int, default=16)
    parser.add_argument("--out", default=None, help="write the per-question agreement here (parquet)")
    args = parser.parse_args(argv)
    flags = cpu_flags()
    print(f"CPU features: {' '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'amx_tile') if f in flags)}"
          f"; {torch.get_num_threads()} threads")
    trained = list(training_record(args.model).get("trained_on_titles") or []) if args.unseen else []
    questions = Selection(exclude_titles=trained or None).load(args.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rationales = load_rationales(args.rationales)
    pool = questions[questions["id"].isin(rationales["id"])].reset_index(drop=True)
    if args.questions:
        pool = pool.head(args.questions)
    model, tokenizer = load_qa_model(args.model)
    print(f"{len(pool)} rationale questions ({len(questions)} questions in the chosen articles)")
    seconds = {}
    started = time.perf_counter()
    predict_table(model, tokenizer, pool, progress=False)
    seconds["plain prediction (the run's cost)"] = (time.perf_counter() - started, len(pool))
    frames = []
    for name, methods, limit in (("gradient x input", ["gradient_x_input"], None),
                                 ("attention + random", ["attention", "random"], None),
                                 (f"integrated gradients ({args.n_steps} steps)", [IntegratedGradients(args.n_steps)],
                                  args.ig_questions)):
        started = time.perf_counter()
        frames.append(explain_rationales(model, tokenizer, pool, rationales, methods=methods, limit=limit,
                                         progress=False))
        seconds[name] = (time.perf_counter() - started, len(set(frames[-1]["id"])))
    base = seconds["plain prediction (the run's cost)"][0] / len(pool)
    print(f"{'way':45s} {'questions':>9s} {'seconds':>8s} {'s/question':>10s} {'× prediction':>12s}")
    for name, (spent, count) in seconds.items():
        print(f"{name:45s} {count:9d} {spent:8.1f} {spent / count:10.3f} {spent / count / base:12.1f}")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    agreement = rationale_agreement(pd.concat(frames, ignore_index=True), rationales)
    pd.set_option("display.width", 200)
    print(plausibility_summary(agreement).round(1).to_string(index=False))
    for measure in ("auprc", "token_f1"):
        print(against_random(agreement, measure=measure).round(1).to_string(index=False))
    if args.causes:
        summary = plausibility_summary(agreement, causes=args.causes)
        print(summary[["method", "cause", "questions", "base rate (%)", "auprc (%)", "auprc low (%)", "auprc high (%)",
                       "token_f1 (%)"]].round(1).to_string(index=False))
    if args.out:
        agreement.to_parquet(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
