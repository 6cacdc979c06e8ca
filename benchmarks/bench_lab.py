"""The distillation lab's recipe search: which recipe, under the lab's budget, gives a distilled student
that beats its hard-label twin on the held-out articles?

Each recipe trains a hard-label student and a distilled one (``LAB_STUDENTS``) from the same
initialisation, labelled questions, fit questions, budget in training windows and seed, through
:func:`xdanalysis.labs.lab_student` (cached: a second run of the script only prints). Printed per
student: windows seen, training seconds, held-out EM / F1 / HasAns F1 / NoAns, the same at the teacher's
threshold 0, F1 when forced to answer; per recipe: distilled − hard on HasAns F1 and overall F1 with a
paired-bootstrap 95% CI over the held-out questions. Nothing is tuned on the held-out articles.

    python benchmarks/bench_lab.py --teacher ../shared/models/minilm-l6-squad2-demo \\
        --data ../shared/data/squad-v2-dev-half.json --held-out French_and_Indian_War,Force --runs runs/lab-bench
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from xdanalysis.analysis import compare
from xdanalysis.labs import NAIVE_RECIPE, LabRecipe, lab_student

# name: (recipe, the distilled student's kind). The hard-label twin shares everything it can use.
RECIPES = {
    "the lab's recipe (300 labelled + 1,200 transfer, 1,000 windows)": (LabRecipe(), "soft targets"),
    "the same, seed 1 (other questions, other batches)": (LabRecipe(seed=1), "soft targets"),
    "the same without transfer data (soft targets on the labelled questions only)": (LabRecipe(transfer=0),
                                                                                      "soft targets"),
    "naive: 2,000 labelled, no transfer, lr 1e-4, 2,400 windows": (NAIVE_RECIPE, "soft targets"),
    "the lab's recipe, 1,500 windows": (LabRecipe(windows=1500), "soft targets"),
    "the lab's recipe, 1,500 windows, seed 1": (LabRecipe(windows=1500, seed=1), "soft targets"),
    "500 labelled + 2,000 transfer, 1,500 windows": (LabRecipe(labelled=500, transfer=2000, windows=1500),
                                                     "soft targets"),
    "the lab's recipe + attention transfer": (LabRecipe(), "soft + attention"),
    "the lab's recipe from layers 1,3,5": (LabRecipe(layers=(1, 3, 5)), "soft targets"),
    "500 labelled + 2,000 transfer, 3,000 windows": (LabRecipe(labelled=500, transfer=2000, windows=3000),
                                                     "soft targets"),
}


def student_row(recipe_name: str, made) -> dict:
    s = made.info["lab"]["scores"]
    return {"recipe": recipe_name, "student": made.info["lab"]["name"], "windows": int(made.log["windows"].sum()),
            "seconds": round(made.info["training_seconds"]), "threshold": round(made.info["lab"]["threshold"], 2),
            "EM": s["exact"], "F1": s["f1"], "HasAns F1": s["HasAns_f1"], "NoAns": s["NoAns_f1"],
            "F1 at 0": s["at_zero"]["f1"], "HasAns F1 at 0": s["at_zero"]["HasAns_f1"],
            "forced HasAns F1": s["forced_HasAns_f1"], "answered": s["answered"]}


def difference(hard, soft, group: str) -> str:
    row = compare(hard.run, soft.run, labels=("hard", "soft")).metrics.set_index(["group", "metric"]).loc[(group, "F1")]
    return f"{row['difference']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--held-out", required=True, help="comma-separated titles never trained on")
    parser.add_argument("--runs", default="runs/lab-bench")
    parser.add_argument("--only", help="comma-separated recipe numbers (1-based) to run")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args(argv)
    held_out = args.held_out.split(",")
    chosen = list(RECIPES.items())
    if args.only:
        chosen = [chosen[int(i) - 1] for i in args.only.split(",")]
    rows, pairs = [], []
    for recipe_name, (recipe, kind) in chosen:
        started = time.perf_counter()
        made = {k: lab_student(k, args.teacher, args.data, runs=args.runs, held_out=held_out, recipe=recipe,
                               precision=args.precision, progress=False) for k in ("hard labels", kind)}
        rows += [student_row(recipe_name, m) for m in made.values()]
        pairs.append({"recipe": recipe_name, "distilled": kind,
                      "HasAns F1, distilled − hard": difference(made["hard labels"], made[kind], "HasAns"),
                      "F1, distilled − hard": difference(made["hard labels"], made[kind], "overall"),
                      "wall s": round(time.perf_counter() - started)})
        print(f"done: {recipe_name} ({pairs[-1]['wall s']} s)", file=sys.stderr, flush=True)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 2):
        print(pd.DataFrame(rows).drop_duplicates(["recipe", "student"]).to_string(index=False))
        print()
        print(pd.DataFrame(pairs).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
