"""Inference speed on the same questions, in one run: ours vs the run_qa way vs the QA pipeline.

    python benchmarks/bench_inference.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --titles French_and_Indian_War,Force --random-l12-h384

``--random-l12-h384`` times a randomly initialised model of XtremeDistil l12-h384's exact shape
(it costs what the real one costs) with the tokenizer of ``--model``.

Prints questions/second for each way, the ratios, the achieved GFLOP/s (the model's FLOPs per
window counted at its real length) against this machine's fp32 matmul rate measured in the
same run, peak RSS, and how many answers differ from the same decoding done window by window.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import peak_rss_mb, timed_ms  # noqa: E402

from xdanalysis.core.data import load_squad  # noqa: E402
from xdanalysis.core.settings import WindowSettings  # noqa: E402
from xdanalysis.model.forward import run_windows  # noqa: E402
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.predict import decode_windows
from xdanalysis.model.windows import prepare_windows


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(timed_ms(lambda: torch.mm(a, b)) for _ in range(repeats)) / 1000
    return 2 * size**3 / best / 1e9


def window_flops(config, length: int) -> float:
    """Multiply-adds x2 of one BERT window of ``length`` tokens (projections, attention, FFN, QA head)."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 8 * length * h * h + 4 * length * h * i + 4 * length * length * h
    return layers * per_layer + 4 * length * h


def run_qa_style(model, windows, max_seq_length, batch_size):
    """transformers' run_qa evaluation: every window padded to max_seq_length, input order."""
    results = []
    pad_token_id = windows.pad_token_id
    has_types = windows.token_type_ids is not None
    with torch.inference_mode():
        for begin in range(0, len(windows["input_ids"]), batch_size):
            chunk = range(begin, min(begin + batch_size, len(windows["input_ids"])))
            ids = torch.full((len(chunk), max_seq_length), pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            types = torch.zeros_like(ids)
            for row, index in enumerate(chunk):
                n = len(windows["input_ids"][index])
                ids[row, :n] = torch.as_tensor(windows["input_ids"][index])
                mask[row, :n] = 1
                if has_types:
                    types[row, :n] = torch.as_tensor(windows["token_type_ids"][index])
            inputs = {"input_ids": ids, "attention_mask": mask}
            if has_types:
                inputs["token_type_ids"] = types
            out = model(**inputs)
            for row, index in enumerate(chunk):
                n = len(windows["input_ids"][index])
                results.append((out.start_logits[row, :n].numpy().copy(), out.end_logits[row, :n].numpy().copy()))
    return results


def pipeline_answers(model, tokenizer, table, max_seq_length, doc_stride):
    from transformers import pipeline

    qa = pipeline("question-answering", model=model, tokenizer=tokenizer, device=-1)
    answers = []
    for row in table.itertuples():
        out = qa(question=row.question, context=row.context, handle_impossible_answer=True,
                 max_seq_len=max_seq_length, doc_stride=doc_stride)
        answers.append(out["answer"])
    return answers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--titles", default=None, help="only these articles (comma-separated)")
    parser.add_argument("--limit", type=int, default=None, help="the first N questions (after --titles)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--random-l12-h384", action="store_true",
                        help="time a random model of XtremeDistil l12-h384's shape with --model's tokenizer")
    parser.add_argument("--skip-window-by-window", action="store_true")
    args = parser.parse_args(argv)

    if args.random_l12_h384:
        from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

        tokenizer = AutoTokenizer.from_pretrained(args.model)
        torch.manual_seed(0)
        config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                            intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2)
        model = BertForQuestionAnswering(config).eval()
        label = "random XtremeDistil l12-h384 shape"
    else:
        model, tokenizer = load_qa_model(args.model, allow_random_head=True)
        label = args.model
    config = model.config
    table = load_squad(args.data, titles=args.titles, limit=args.limit)
    n = len(table)
    print(f"model: {label}; {n} questions of {args.data}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, fp32")

    peak = matmul_gflops()
    print(f"fp32 matmul (2048x2048): {peak:.1f} GFLOP/s")

    rows = []

    def timed_way(name, fn):
        started = time.perf_counter()
        answers = fn()
        seconds = time.perf_counter() - started
        rows.append((name, seconds, answers))
        print(f"  {name}: {n / seconds:.2f} q/s ({seconds:.1f} s), peak RSS so far {peak_rss_mb():.0f} MB",
              flush=True)
        return answers

    windowing = WindowSettings(args.max_seq_length, args.doc_stride)

    def ours():
        windows = prepare_windows(table, tokenizer, windowing)
        logits = run_windows(model, windows, batch_size=args.batch_size, progress=False)
        ours.windows = windows
        return [d["answer"] for d in decode_windows(table, windows, logits)]

    def run_qa():
        windows = prepare_windows(table, tokenizer, windowing)
        logits = run_qa_style(model, windows, args.max_seq_length, args.batch_size)
        return [d["answer"] for d in decode_windows(table, windows, logits)]

    print("timing (same questions, one after another):")
    our_answers = timed_way("xdanalysis predict (length-sorted, dynamic padding)", ours)
    qa_answers = timed_way("run_qa way (padded to max_seq_length, input order)", run_qa)
    pipe_answers = None
    from transformers.pipelines import SUPPORTED_TASKS

    if "question-answering" in SUPPORTED_TASKS:
        try:
            pipe_answers = timed_way("transformers QA pipeline (batch 1)",
                                     lambda: pipeline_answers(model, tokenizer, table, args.max_seq_length,
                                                              args.doc_stride))
        except Exception as exc:  # noqa: BLE001 - report why, keep the other numbers
            print(f"  transformers QA pipeline: failed ({type(exc).__name__}: {exc})")
    else:
        import transformers

        print(f"  transformers QA pipeline: not available in transformers {transformers.__version__} "
              "(the extractive question-answering pipeline was removed in 5.3)")

    windows = ours.windows
    lengths = [len(ids) for ids in windows["input_ids"]]
    total_flops = sum(window_flops(config, length) for length in lengths)
    our_seconds = rows[0][1]
    achieved = total_flops / our_seconds / 1e9
    print(f"\n{len(lengths)} windows, mean length {np.mean(lengths):.0f} tokens, "
          f"{total_flops / len(lengths) / 1e9:.2f} GFLOP per window at real length")

    print(f"\n{'way':55}{'q/s':>8}{'ours is':>10}")
    for name, seconds, _ in rows:
        print(f"{name:55}{n / seconds:8.2f}{seconds / our_seconds:9.2f}x")
    print(f"\nachieved: {achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f}% of the measured fp32 matmul rate "
          f"({peak:.1f} GFLOP/s)")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")

    print("\nanswers that differ from ours:")
    print(f"  run_qa way: {sum(a != b for a, b in zip(our_answers, qa_answers))} of {n}")
    if pipe_answers is not None:
        print(f"  pipeline (decodes differently): {sum(a != b for a, b in zip(our_answers, pipe_answers))} of {n}")
    if not args.skip_window_by_window:
        logits = run_windows(model, windows, batch_size=1, progress=False)
        single = [d["answer"] for d in decode_windows(table, windows, logits)]
        print(f"  window by window (batch 1, no padding): {sum(a != b for a, b in zip(our_answers, single))} of {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
