"""The ``xdanalysis`` command: predict, score, evaluate, report, probe, distill."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from dataclasses import fields
from pathlib import Path

from ..core.common import name_some, rename_options
from ..core.data import DataError, HubUnreachableError, Selection, gold_answers, load_squad
from ..core.io import write_text
from ..core.metrics import MissingPredictionsError, squad_v2_scores
from ..core.settings import DECODING_DEFAULTS, DecodingSettings, Execution, OpenVINOSettings, WindowSettings
from ..views.summary import summary_text

__all__ = ['COMMANDS', 'MAKE_NAMES', 'build_parser', 'main']


# What `make report` calls each option: errors name what the user typed (MODEL=, not --model).
MAKE_NAMES = {"--model": "MODEL=", "--data": "DATA=", "--limit": "LIMIT=", "--titles": "TITLES=",
              "--out": "RUN=", "--overwrite": "OVERWRITE=1", "--runtime": "RUNTIME=", "--dtype": "DTYPE=",
              "--calibration-data": "CALIBRATION="}


def _add_predict_arguments(parser: argparse.ArgumentParser, out_required: bool) -> None:
    from ..model.device import DEVICES, DTYPES
    from ..model.loading import DEFAULT_MODEL
    from ..core.settings import ENGINES, RUNTIMES

    parser.add_argument("--model", default=DEFAULT_MODEL, help="Hub id or local checkpoint directory "
                        f"(default {DEFAULT_MODEL})")
    parser.add_argument("--data", default="squad_v2", help="Hub dataset name, official SQuAD JSON, "
                        "or JSONL/parquet with the squad_v2 columns (default squad_v2)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--titles", default=None, help="only these articles (comma-separated titles), e.g. "
                        "French_and_Indian_War,Force, the demo model's held-out articles")
    parser.add_argument("--exclude-titles", default=None, help="leave out these articles (comma-separated)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions (after --titles)")
    for name in ("max_seq_length", "doc_stride", "max_query_length", "n_best_size", "max_answer_length"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=DECODING_DEFAULTS[name],
                            help=f"default {DECODING_DEFAULTS[name]}")
    parser.add_argument("--null-score-diff-threshold", type=float,
                        default=DECODING_DEFAULTS["null_score_diff_threshold"],
                        help="abstain when null odds exceed it (default 0.0)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="auto: CUDA, then Apple MPS, then the CPU (default auto)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="float32 (default, as the official figures), bfloat16, float16 (GPU), int8, or auto: "
                             "bfloat16 where the hardware runs it fast (CUDA, CPUs with AMX or AVX512-BF16). int8 with "
                             "--runtime openvino is the fast one (NNCF, static scales); with --runtime torch it is "
                             "PyTorch's dynamic quantisation, one window per pass: slower than float32, kept for "
                             "comparison. Both are cached in ~/.cache/xdanalysis")
    parser.add_argument("--runtime", default="torch", choices=RUNTIMES,
                        help="torch (default), or openvino: the forward pass compiled by OpenVINO for the CPU, the "
                             "fast way to predict (pip install 'xdanalysis[openvino]'); attention and attribution "
                             "stay on PyTorch")
    parser.add_argument("--calibration-data", default=None,
                        help="--runtime openvino --dtype int8: draw the calibration questions from this data (default: "
                             "the model's training articles, else the articles of --data the run leaves out)")
    parser.add_argument("--calibration-windows", type=int, default=OpenVINOSettings().calibration_windows,
                        help=f"windows int8's activation scales are measured on (default "
                             f"{OpenVINOSettings().calibration_windows})")
    parser.add_argument("--engine", default="local", choices=ENGINES,
                        help="ray: compute the chunks on Ray Data actors (pip install 'xdanalysis[ray]')")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: a local Ray started here)")
    parser.add_argument("--workers", type=int, default=None, help="Ray actors, each loading the model once "
                        "(default 2, or one per GPU)")
    parser.add_argument("--allow-random-head", action="store_true",
                        help="accept a checkpoint without a trained QA head (demos and tests)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run with other settings in --out")
    parser.add_argument("--out", required=out_required, default=None,
                        help="run directory" + ("" if out_required else " (default runs/<model>__<data>)"))


def _predict(args):
    from ..runs.run import predict_run
    from ..runs.store import default_run_dir

    selection = _selection_of(args)
    out = args.out or default_run_dir(args.model, args.data, selection.limit, titles=selection.titles,
                                      exclude_titles=selection.exclude_titles, runtime=args.runtime, dtype=args.dtype)
    return predict_run(args.model, args.data, out, selection=selection, **_settings_of(args),
                       execution=_execution_of(args), overwrite=args.overwrite)


def _settings_of(args) -> dict:
    """The window and decoding settings the options give, as the objects every function takes."""
    return {"windowing": _pick(WindowSettings, args), "decoding": _pick(DecodingSettings, args)}


def _pick(kind, args, **given):
    """A settings object from the options named like its fields (and ``given``)."""
    return kind(**{f.name: getattr(args, f.name) for f in fields(kind) if hasattr(args, f.name)}, **given)


def _selection_of(args) -> Selection:
    return _pick(Selection, args)


def _execution_of(args) -> Execution:
    """How the model runs, from the options (a command without --dtype leaves it to the default)."""
    openvino = OpenVINOSettings(calibration_data=args.calibration_data, calibration_windows=args.calibration_windows)
    return _pick(Execution, args, openvino=openvino)


def _read_mapping(path: str, what: str, kind) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what} file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                        f"save the {what} file as UTF-8, as JSON requires") from None
    if not isinstance(payload, dict):
        raise DataError(f"{path}: a {what} file must be a JSON object {{id: value}}")
    bad = [k for k, v in payload.items() if not isinstance(v, kind) or isinstance(v, bool)
           or (isinstance(v, float) and math.isnan(v))]
    if bad:
        raise DataError(f"{path}: {len(bad)} {what} value(s) of the wrong type or NaN, e.g. id {bad[0]!r}: "
                        f"{payload[bad[0]]!r} (all: {name_some(bad)})")
    return payload


def _score(args) -> int:
    from ..core.io import refuse_foreign_file

    # `-p=~/imgs` reaches us unexpanded (the shell expands ~ only at a word's start)
    args.out_image_dir = os.path.expanduser(args.out_image_dir) if args.out_image_dir else None
    if args.out_file:
        args.out_file = refuse_foreign_file(args.out_file, is_ours=_is_eval_file, what="a scores file (-o)")
    table = load_squad(args.data_file, strict=False)
    predictions = _read_mapping(args.pred_file, "prediction", str)
    na_probs = _read_mapping(args.na_prob_file, "no-answer probability", (int, float)) if args.na_prob_file else None
    result = squad_v2_scores(gold_answers(table), predictions, na_probs, na_prob_thresh=args.na_prob_thresh,
                             out_image_dir=args.out_image_dir if na_probs is not None else None,
                             missing="wrong" if args.missing_as_wrong else "error")
    if args.out_file:
        write_text(args.out_file, json.dumps(result))  # the official script's bytes, written whole
    else:
        print(json.dumps(result, indent=2))
    return 0


def _is_eval_file(path) -> bool:
    """A scores file written before (the official JSON: an object with exact, f1 and total)."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    return isinstance(payload, dict) and {"exact", "f1", "total"} <= set(payload)


def _evaluate(args) -> int:
    run = _predict(args)
    scores = run.scores()
    write_text(run.path / "scores.json", json.dumps(scores, indent=2))
    text = summary_text(scores, args.model, run)
    write_text(run.path / "summary.txt", text + "\n")
    print(text)
    if args.report:
        from .report import write_report

        print(f"\nreport: {write_report(run, run.path / 'report.html')}")
    return 0


def _report(args) -> int:
    from ..runs.run import load_run
    from .report import write_report

    run = load_run(args.run)
    print(write_report(run, args.out or run.path / "report.html", n_boot=args.n_boot, seed=args.seed,
                       causes=args.causes))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xdanalysis", description="Run, score and analyse extractive QA models "
                                     "on SQuAD 2.0.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="run a model over SQuAD 2.0 into a run directory")
    _add_predict_arguments(predict, out_required=True)

    _add_score_parser(commands)

    evaluate = commands.add_parser("evaluate", help="predict, then score, and print a summary table")
    _add_predict_arguments(evaluate, out_required=False)
    evaluate.add_argument("--report", action="store_true", help="also write RUN/report.html")

    probe = commands.add_parser("probe", help="robustness probes: rewrite the questions (answer sentence removed, "
                                "sentences moved, typos, ...) and check the model behaves as it should")
    _add_predict_arguments(probe, out_required=True)
    probe.add_argument("--probes", default="all", help="'all' or a comma-separated list of probe names")
    probe.add_argument("--seed", type=int, default=0, help="seed of the probes' random choices")
    probe.add_argument("--rationales", default=None, help="SQuAD2-CR's rationales-dev.tsv: adds the probes "
                       "delete_rationale and delete_random_words (official dev ids only)")
    probe.add_argument("--report", action="store_true", help="also write OUT/original/report.html with the probes")

    _add_distill_parser(commands)
    _add_compress_parser(commands)

    report = commands.add_parser("report", help="write the error-analysis HTML report of a run")
    report.add_argument("run", help="run directory")
    report.add_argument("--out", default=None, help="HTML file (default RUN/report.html)")
    report.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the intervals")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--causes", default=None, help="SQuAD2-CR's causes-dev.tsv: adds a section on which causes "
                        "of unanswerability the model falls for (a run over the official dev ids)")
    return parser


def _add_score_parser(commands) -> None:
    """The official evaluate-v2.0.py's arguments, as it names them."""
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


def _add_distill_parser(commands) -> None:
    from ..distill.config import DISTILL_DEFAULTS as D
    from ..model.device import DEVICES
    from ..core.settings import ENGINES

    distil = commands.add_parser("distill", help="train a student from a teacher (soft targets, attention transfer)")
    distil.add_argument("--teacher", required=True, help="teacher: Hub id or local QA checkpoint")
    distil.add_argument("--data", required=True, help="training data (as for predict)")
    distil.add_argument("--out", required=True, help="the student's directory")
    distil.add_argument("--student-layers", default=None, help="keep these teacher layers (default 0,2,4)")
    distil.add_argument("--student", default=None, help="or start from this checkpoint (a plain encoder is fine)")
    distil.add_argument("--titles", default=None, help="train on these articles only (comma-separated)")
    distil.add_argument("--exclude-titles", default=None, help="train on all but these articles")
    distil.add_argument("--limit", type=int, default=None)
    for name in ("temperature", "alpha", "attention_weight", "learning_rate"):
        distil.add_argument("--" + name.replace("_", "-"), type=float, default=D[name], help=f"default {D[name]}")
    for name in ("epochs", "max_steps", "batch_size", "max_seq_length", "doc_stride", "seed"):
        distil.add_argument("--" + name.replace("_", "-"), type=int, default=D[name], help=f"default {D[name]}")
    distil.add_argument("--eval-data", default=None, help="evaluate the student on this data (default: the "
                        "training data's other articles, when --titles/--exclude-titles chose some)")
    distil.add_argument("--eval-titles", default=None)
    distil.add_argument("--cache-dir", default=None, help="teacher-logit cache (default OUT/../teacher-logits)")
    distil.add_argument("--checkpoint-every", type=int, default=None,
                        help="save a resumable checkpoint every N steps (default: every epoch)")
    distil.add_argument("--precision", "--dtype", dest="precision", choices=["float32", "bfloat16", "auto"],
                        default="float32", help="bfloat16: train under bf16 autocast (weights stay fp32; faster on "
                        "GPUs and CPUs with AVX512-BF16/AMX); auto: bfloat16 where it is fast")
    distil.add_argument("--device", default="auto", choices=DEVICES,
                        help="where the teacher and the student run (default auto: CUDA, then MPS, then CPU)")
    distil.add_argument("--engine", default="local", choices=ENGINES,
                        help="ray: the teacher-logit pass on Ray Data actors (pip install 'xdanalysis[ray]')")
    distil.add_argument("--ray-address", default=None)
    distil.add_argument("--workers", type=int, default=None)


def _as_typed(message: str) -> str:
    """Under `make`, name the Makefile variables the user set instead of the CLI's flags."""
    if os.environ.get("XDANALYSIS_VIA_MAKE") != "1":
        return message
    return rename_options(message, MAKE_NAMES)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # the command's warnings, each said once, as a sentence
        warnings.simplefilter("default")
        warnings.showwarning = _sentence_once(args.command)
        return _guarded(args)


def _sentence_once(command: str):
    """A ``warnings.showwarning`` that prints each warning once, as ``xdanalysis COMMAND: warning: ...``: one
    line per message, and one for all the runs over trained-on articles (a probe makes several); ``evaluate``'s
    summary says that one itself."""
    from ..runs.run import TrainedArticlesWarning

    said = set()

    def show(message, category, filename, lineno, file=None, line=None):
        trained = issubclass(category, TrainedArticlesWarning)
        key = category.__name__ if trained else str(message)
        if key in said or (trained and command == "evaluate"):
            return
        said.add(key)
        print(f"xdanalysis {command}: warning: {message}", file=sys.stderr)
    return show


def _guarded(args) -> int:
    """The command, with its known failures said in one line."""
    try:
        return _main(args)
    except KeyboardInterrupt:
        print(f"\nxdanalysis {args.command}: interrupted. Finished chunks are kept: run the same command "
              "again to resume.", file=sys.stderr)
        return 130
    except (DataError, HubUnreachableError, MissingPredictionsError, OSError, ValueError) as exc:
        # Data, model, settings and run-directory problems carry their own message.
        print(_as_typed(f"xdanalysis {args.command}: error: {exc}"), file=sys.stderr)
        return 2


def _add_compress_parser(commands) -> None:
    from ..compress.variants import DEFAULT_VARIANT_TEXT
    from ..labs.compress import CompressSettings as C

    lab = commands.add_parser("compress", help="the compression lab: float32 vs bf16, int8, pruned heads, dropped "
                              "layers and students, judged on held-out articles (answerable and unanswerable sides)")
    lab.add_argument("--model", required=True, help="local QA checkpoint directory")
    lab.add_argument("--data", required=True, help="SQuAD 2.0 data (as for predict)")
    lab.add_argument("--held-out", default=None, help="comma-separated titles to evaluate on (never the articles "
                     "the model trained on); head importance uses the other articles. Default: all of --data (a "
                     "Hub dataset's validation split; importance then uses its train split)")
    lab.add_argument("--out", required=True, help="the lab's directory (runs, models, comparison.csv, report.html)")
    lab.add_argument("--variants", default=DEFAULT_VARIANT_TEXT,
                     help="comma-separated, fp32 first: fp32, bf16, int8, int8-naive (PyTorch), ov-fp32, ov-bf16, "
                     "ov-int8 (OpenVINO: each variant names its runtime), heads:FRACTION, layers:I+J+K "
                     "(or layers:I,J,K last), NAME=CHECKPOINT for a student")
    lab.add_argument("--limit", type=int, default=None, help="only the first N held-out questions")
    for name in ("importance_questions", "speed_questions", "speed_rounds", "n_boot"):
        lab.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(C(), name),
                         help=f"default {getattr(C(), name)}")


def _compress(args) -> int:
    from ..labs.compress import CompressSettings, compress
    from ..compress.variants import split_variants
    from ..core.data import title_list
    from ..views.tables import readable
    from .report import write_compression_report

    settings = CompressSettings(importance_questions=args.importance_questions, speed_questions=args.speed_questions,
                                speed_rounds=args.speed_rounds, n_boot=args.n_boot)
    result = compress(args.model, args.data, args.out, held_out=title_list(args.held_out),
                      variants=split_variants(args.variants), settings=settings, limit=args.limit)
    shown = ["variant", "weights (MB)", "speed-up", "F1", "F1 diff", "HasAns F1 diff", "NoAns acc diff",
             "answers changed (%)", "threshold shift"]
    print(readable(result.table[shown]).to_string(index=False))
    print()
    print("\n".join(result.verdict()))
    print(f"\ntable: {result.path / 'comparison.csv'}\nreport: {write_compression_report(result)}")
    return 0


def _print_predict(args) -> int:
    print(_predict(args).path)
    return 0


def _distill(args) -> int:
    from ..distill.config import DistillConfig, default_precision
    from ..distill.train import distill
    from ..views.summary import summary_text as text_of

    if args.student and args.student_layers:
        raise ValueError("give --student or --student-layers, not both")
    layers = _layer_list(args.student_layers)
    config = DistillConfig(
        temperature=args.temperature, alpha=args.alpha, attention_weight=args.attention_weight, epochs=args.epochs,
        max_steps=args.max_steps, learning_rate=args.learning_rate, batch_size=args.batch_size,
        windowing=WindowSettings(max_seq_length=args.max_seq_length, doc_stride=args.doc_stride), seed=args.seed,
        precision=default_precision() if args.precision == "auto" else args.precision,
        checkpoint_every=args.checkpoint_every)
    result = distill(args.teacher, args.data, args.out, config=config, student=args.student or layers,
                     selection=Selection(titles=args.titles, exclude_titles=args.exclude_titles, limit=args.limit),
                     evaluate=_eval_of(args), cache_dir=args.cache_dir,
                     execution=Execution(device=args.device, engine=args.engine, ray_address=args.ray_address,
                                         workers=args.workers))
    info = result.info
    print(f"student: {result.path}  ({info['steps']} steps, {info['windows_per_second']} windows/s, "
          f"peak RSS {info['peak_rss_mb']} MB)")
    if result.run is not None:
        print(text_of(result.run.scores(), str(result.path), result.run))
    return 0


def _eval_of(args):
    """``distill``'s ``evaluate`` from --eval-data / --eval-titles (default: the articles not trained on)."""
    if args.eval_data is None and args.eval_titles is None:
        return True
    return (args.eval_data or args.data, Selection(titles=args.eval_titles))


def _layer_list(text: str | None) -> list:
    """``--student-layers``: the default 0,2,4 when not given; given, whole numbers, or a message."""
    if text is None:
        return [0, 2, 4]
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or not all(p.isdigit() for p in parts):
        raise ValueError(f"--student-layers {text!r}: give the teacher layers to keep as whole numbers, e.g. 0,2,4")
    return [int(p) for p in parts]


def _probe(args) -> int:
    from ..analysis.probes.summary import probe_summary, probe_summary_text
    from ..labs.probes import run_probes

    results = run_probes(args.model, args.data, args.out, probes=args.probes, seed=args.seed,
                         selection=_selection_of(args), **_settings_of(args), execution=_execution_of(args),
                         rationales=args.rationales, overwrite=args.overwrite)
    text = probe_summary_text(probe_summary(results))
    write_text(Path(args.out).expanduser() / "probe_summary.txt", text + "\n")
    print(text)
    print(f"\nper question: {Path(args.out).expanduser() / 'probes.parquet'}")
    if args.report:
        from .report import write_report

        run = results.original
        print(f"report: {write_report(run, run.path / 'report.html')}")
    return 0


COMMANDS = {"predict": _print_predict, "score": _score, "evaluate": _evaluate, "report": _report,
            "probe": _probe, "distill": _distill, "compress": _compress}


def _main(args) -> int:
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
