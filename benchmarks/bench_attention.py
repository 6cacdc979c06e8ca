"""How fast the AttentionExplorer redraws for a cached question.

    python benchmarks/bench_attention.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --questions 5 [--random-l12-h384]

For each question: the first view (extraction with eager attention + drawing) is timed apart;
then slider moves, view changes and the word toggle on the cached question, against 300 ms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import add_model_arguments, peak_rss_mb, print_updates, timed_model, timed_ms  # noqa: E402

from xdanalysis.apps.model_widgets import ATTENTION_VIEWS, AttentionExplorer  # noqa: E402
from xdanalysis.runs.run import predict_run  # noqa: E402
from xdanalysis.core import Execution, Selection

BUDGET_MS = 300.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--data", required=True)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--freeze-gc", action="store_true", help="AttentionExplorer(freeze_gc=True)")
    args = parser.parse_args(argv)
    model, tokenizer = timed_model(args)
    import tempfile

    run = predict_run((model, tokenizer), args.data, Path(tempfile.mkdtemp()) / "run", selection=Selection(limit=args.questions), execution=Execution(allow_random_head=True, progress=False))
    table = run.table
    # freeze_gc: the opt-in that keeps full collections of the model's objects out of redraws
    explorer = AttentionExplorer(run, model, tokenizer, freeze_gc=args.freeze_gc)
    layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    print(f"{layers} layers x {heads} heads; {len(table)} real questions of {args.data}")
    results: dict[str, list[float]] = {}
    for qid in table["id"]:
        explorer.view.value = "one head"
        if explorer.question.value != qid:  # the first question is extracted when the explorer opens
            results.setdefault("new question (extract + draw)", []).append(
                timed_ms(lambda: explorer.show_question(qid)))
        else:
            explorer.redraw()
        for layer in range(0, layers, max(1, layers // 4)):
            results.setdefault("layer slider", []).append(timed_ms(lambda: setattr(explorer.layer, "value", layer)))
            results.setdefault("head slider", []).append(
                timed_ms(lambda: setattr(explorer.head, "value", (explorer.head.value + 5) % heads)))
        for view in ATTENTION_VIEWS:
            results.setdefault("view change", []).append(timed_ms(lambda: setattr(explorer.view, "value", view)))
        results.setdefault("word toggle", []).append(timed_ms(lambda: setattr(explorer.words, "value", True)))
        results.setdefault("word toggle", []).append(timed_ms(lambda: setattr(explorer.words, "value", False)))
    worst = print_updates(results, BUDGET_MS, exempt={"new question (extract + draw)"})
    print(f"\nworst update for a cached question: {worst:.0f} ms; peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
