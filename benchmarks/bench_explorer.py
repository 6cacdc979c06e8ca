"""How fast the ErrorExplorer updates on a full dev-set-sized run (~12k questions): slices,
buckets, outcomes, the grid of two slices and its cells, the error tree's leaves.

    python benchmarks/bench_explorer.py --run RUN [--copies 2]

``--copies`` repeats the run's questions (with new ids) to reach the size of the full SQuAD 2.0
dev set (11,873 questions) from a half-size run. Prints, per kind of update, the median and the
worst time over several updates, against the 200 ms budget, and peak RSS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import peak_rss_mb, print_updates, timed_ms  # noqa: E402

from xdanalysis.apps.widgets import ErrorExplorer  # noqa: E402
from xdanalysis.runs.run import Run, load_run  # noqa: E402

BUDGET_MS = 200.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True)
    parser.add_argument("--copies", type=int, default=2)
    args = parser.parse_args(argv)

    run = load_run(args.run)
    parts = []
    for copy in range(args.copies):
        part = run.table.copy()
        part["id"] = part["id"] + (f"-{copy}" if copy else "")
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    nbest = {f"{qid}-{c}" if c else qid: v for c in range(args.copies) for qid, v in run.nbest.items()}
    big = Run(path=run.path, table=table, info=run.info, _nbest=nbest)
    print(f"run {args.run}: {len(run.table)} questions x {args.copies} = {len(table)}")

    holder = {}
    start_ms = timed_ms(lambda: holder.setdefault("explorer", ErrorExplorer(big)))
    explorer = holder["explorer"]
    print(f"explorer start (outcomes, every slice bucketed and scored, first plot): {start_ms:.0f} ms")

    results: dict[str, list[float]] = {}

    def record(kind, fn):
        results.setdefault(kind, []).append(timed_ms(fn))

    slices = list(explorer.slice.options)
    for name in slices:  # first visit: buckets, slice table with bootstrap, plot
        record("slice change, first visit", lambda n=name: setattr(explorer.slice, "value", n))
    for name in slices:
        record("slice change, cached", lambda n=name: setattr(explorer.slice, "value", n))
        for bucket in explorer.bucket.options[1:4]:
            record("bucket change", lambda b=bucket: setattr(explorer.bucket, "value", b))
            for outcome in ("false_answer", "(all errors)", "abstained"):
                record("outcome change", lambda o=outcome: setattr(explorer.outcome, "value", o))
                record("next example", explorer.next_button.click)

    explorer.slice.value = "question type"
    explorer.outcome.value = "(all errors)"
    for second in ("context length", "answer position", "gold agreement", "windows"):  # the grid of two slices
        record("second slice, first visit", lambda s=second: setattr(explorer.second, "value", s))
        buttons = [c for c in explorer.grid.children[0].children[1].children
                   if hasattr(c, "click") and not c.disabled]
        for button in buttons[:6]:
            record("grid cell click", button.click)
            record("next example", explorer.next_button.click)
    for second in ("context length", "answer position"):
        record("second slice, cached", lambda s=second: setattr(explorer.second, "value", s))
    explorer.second.value = "(none)"
    for _, leaf in explorer.leaf.options[1:]:  # the error tree's leaves
        record("tree leaf change", lambda v=leaf: setattr(explorer.leaf, "value", v))
        record("next example", explorer.next_button.click)

    worst = print_updates(results, BUDGET_MS)
    print(f"\nworst update: {worst:.0f} ms; peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
