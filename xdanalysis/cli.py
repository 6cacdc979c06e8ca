"""The ``xdanalysis`` command: predict, score, evaluate, report."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

from .data import DataError, HubUnreachableError, gold_answers, load_squad
from .metrics import MissingPredictionsError, squad_v2_scores

# The published figures of the default model (its model card, SQuAD 2.0 validation, threshold 0).
CARD_FIGURES = {"nbroad/xdistil-l12-h384-squad2": {"exact": 75.46, "f1": 79.33}}


def _add_predict_arguments(parser: argparse.ArgumentParser, out_required: bool) -> None:
    from .inference import DEFAULT_MODEL

    parser.add_argument("--model", default=DEFAULT_MODEL, help="Hub id or local checkpoint directory "
                        f"(default {DEFAULT_MODEL})")
    parser.add_argument("--data", default="squad_v2", help="Hub dataset name, official SQuAD JSON, "
                        "or JSONL/parquet with the squad_v2 columns (default squad_v2)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--n-best-size", type=int, default=20)
    parser.add_argument("--max-answer-length", type=int, default=30)
    parser.add_argument("--null-score-diff-threshold", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--allow-random-head", action="store_true",
                        help="accept a checkpoint without a trained QA head (demos and tests)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run with other settings in --out")
    parser.add_argument("--out", required=out_required, default=None,
                        help="run directory" + ("" if out_required else " (default runs/<model>__<data>)"))


def _predict(args):
    from .runs import default_run_dir, predict_run

    out = args.out or default_run_dir(args.model, args.data, args.limit)
    return predict_run(
        args.model, args.data, out, split=args.split, limit=args.limit, max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride, n_best_size=args.n_best_size, max_answer_length=args.max_answer_length,
        null_score_diff_threshold=args.null_score_diff_threshold, batch_size=args.batch_size,
        allow_random_head=args.allow_random_head, overwrite=args.overwrite)


def _logit(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p / (1.0 - p))


def summary_text(scores: dict, model: str, run=None) -> str:
    """A compact table of the scores: overall, answerable, unanswerable, best thresholds."""
    card = CARD_FIGURES.get(model)
    lines = [f"model: {model}"]
    if run is not None:
        info = run.info
        lines.append(f"data:  {info['settings']['data']} ({info['settings']['n_questions']} questions)")
        lines.append(f"run:   {run.path}  ({info['questions_per_second']} q/s, peak RSS {info['peak_rss_mb']} MB)")
    header = f"{'':28}{'EM':>8}{'F1':>8}{'questions':>11}"
    if card:
        header += f"{'card EM':>10}{'card F1':>9}"
    lines += ["", header]
    rows = [("overall", ""), ("answerable (HasAns)", "HasAns_"), ("unanswerable (NoAns)", "NoAns_")]
    for label, prefix in rows:
        if f"{prefix}total" not in scores:
            continue
        line = f"{label:28}{scores[prefix + 'exact']:8.2f}{scores[prefix + 'f1']:8.2f}{scores[prefix + 'total']:11d}"
        if card and not prefix:
            line += f"{card['exact']:10.2f}{card['f1']:9.2f}"
        lines.append(line)
    if "best_f1" in scores:
        lines.append("")
        for key in ("exact", "f1"):
            p = scores[f"best_{key}_thresh"]
            lines.append(f"best {key.upper() if key == 'f1' else 'EM'}: {scores['best_' + key]:.2f} at no-answer "
                         f"probability {p:.4f} (null-odds threshold {_logit(p):+.3f})")
    return "\n".join(lines)


def _read_mapping(path: str, what: str, kind) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what} file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(payload, dict):
        raise DataError(f"{path}: a {what} file must be a JSON object {{id: value}}")
    bad = [k for k, v in payload.items() if not isinstance(v, kind) or isinstance(v, bool)]
    if bad:
        raise DataError(f"{path}: {len(bad)} {what} value(s) of the wrong type, e.g. id {bad[0]!r}: "
                        f"{payload[bad[0]]!r}")
    return payload


def _score(args) -> int:
    table = load_squad(args.data_file, strict=False)
    predictions = _read_mapping(args.pred_file, "prediction", str)
    na_probs = _read_mapping(args.na_prob_file, "no-answer probability", (int, float)) if args.na_prob_file else None
    result = squad_v2_scores(gold_answers(table), predictions, na_probs, na_prob_thresh=args.na_prob_thresh,
                             out_image_dir=args.out_image_dir if na_probs is not None else None,
                             missing="wrong" if args.missing_as_wrong else "error")
    if args.out_file:
        with open(args.out_file, "w") as handle:
            json.dump(result, handle)
    else:
        print(json.dumps(result, indent=2))
    return 0


def _evaluate(args) -> int:
    run = _predict(args)
    scores = run.scores()
    (run.path / "scores.json").write_text(json.dumps(scores, indent=2))
    text = summary_text(scores, args.model, run)
    (run.path / "summary.txt").write_text(text + "\n")
    print(text)
    if args.report:
        from .report import write_report

        print(f"\nreport: {write_report(run, run.path / 'report.html')}")
    return 0


def _report(args) -> int:
    from .report import write_report
    from .runs import load_run

    run = load_run(args.run)
    print(write_report(run, args.out or run.path / "report.html", n_boot=args.n_boot, seed=args.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xdanalysis", description="Run, score and analyse extractive QA models "
                                     "on SQuAD 2.0.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="run a model over SQuAD 2.0 into a run directory")
    _add_predict_arguments(predict, out_required=True)

    score = commands.add_parser("score", help="score predictions exactly as the official evaluate-v2.0.py")
    score.add_argument("data_file", metavar="data.json", help="Input data JSON file.")
    score.add_argument("pred_file", metavar="pred.json", help="Model predictions.")
    score.add_argument("--out-file", "-o", metavar="eval.json",
                       help="Write accuracy metrics to file (default is stdout).")
    score.add_argument("--na-prob-file", "-n", metavar="na_prob.json",
                       help="Model estimates of probability of no answer.")
    score.add_argument("--na-prob-thresh", "-t", type=float, default=1.0,
                       help='Predict "" if no-answer probability exceeds this (default = 1.0).')
    score.add_argument("--out-image-dir", "-p", metavar="out_images", default=None,
                       help="Save precision-recall curves to directory.")
    score.add_argument("--missing-as-wrong", action="store_true",
                       help="score questions without a prediction as wrong (the official script crashes)")
    score.add_argument("--verbose", "-v", action="store_true")

    evaluate = commands.add_parser("evaluate", help="predict, then score, and print a summary table")
    _add_predict_arguments(evaluate, out_required=False)
    evaluate.add_argument("--report", action="store_true", help="also write RUN/report.html")

    report = commands.add_parser("report", help="write the error-analysis HTML report of a run")
    report.add_argument("run", help="run directory")
    report.add_argument("--out", default=None, help="HTML file (default RUN/report.html)")
    report.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the intervals")
    report.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    try:
        if args.command == "predict":
            run = _predict(args)
            print(run.path)
            return 0
        if args.command == "score":
            return _score(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "report":
            return _report(args)
    except KeyboardInterrupt:
        print(f"\nxdanalysis {args.command}: interrupted. Finished chunks are kept: run the same command "
              "again to resume.", file=sys.stderr)
        return 130
    except (DataError, HubUnreachableError, MissingPredictionsError, FileNotFoundError) as exc:
        print(f"xdanalysis {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # model, settings and run-directory problems carry their own message
        print(f"xdanalysis {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
