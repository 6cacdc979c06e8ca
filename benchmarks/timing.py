"""What the benchmarks share: a millisecond timer, peak RSS, and the table of update times."""

from __future__ import annotations

import resource
import statistics
import time


def timed_ms(fn) -> float:
    """Run ``fn()`` once; its wall time in milliseconds."""
    started = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - started)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def print_updates(results: dict, budget_ms: float, exempt=()) -> float:
    """Median and worst time per kind of update against ``budget_ms``; kinds in ``exempt`` are
    shown but not held to the budget. Returns the worst time among the others."""
    width = max(len(kind) for kind in results) + 2
    print(f"\n{'update':{width}}{'n':>5}{'median ms':>11}{'worst ms':>10}  within {budget_ms:.0f} ms")
    worst_held = 0.0
    for kind, times in results.items():
        worst = max(times)
        verdict = "(not held to it)" if kind in exempt else ("yes" if worst < budget_ms else "NO")
        if kind not in exempt:
            worst_held = max(worst_held, worst)
        print(f"{kind:{width}}{len(times):5d}{statistics.median(times):11.1f}{worst:10.1f}  {verdict}")
    return worst_held


def random_l12_h384():
    """A random model of XtremeDistil l12-h384's shape (12 layers x 12 heads, hidden 384): for timings only."""
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    return BertForQuestionAnswering(BertConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                                               intermediate_size=1536)).eval()


def add_model_arguments(parser) -> None:
    """``--model`` and ``--random-l12-h384``, as every model benchmark takes them."""
    parser.add_argument("--model", required=True)
    parser.add_argument("--random-l12-h384", action="store_true",
                        help="a random model of XtremeDistil l12-h384's shape (12 layers x 12 heads), with --model's "
                             "tokenizer")


def timed_model(args):
    """``(model, tokenizer)`` for a benchmark: ``--model``, or its tokenizer with a random
    l12-h384 model (its predictions are random: only the timing matters)."""
    from xdanalysis.model.loading import load_qa_model

    model, tokenizer = load_qa_model(args.model, allow_random_head=True)
    return (random_l12_h384() if args.random_l12_h384 else model), tokenizer


def add_question_arguments(parser) -> None:
    """The options every benchmark over real questions takes: --model, --data, --titles, --limit."""
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--titles", default=None, help="comma-separated articles (e.g. the held-out ones)")
    parser.add_argument("--limit", type=int, default=None)
