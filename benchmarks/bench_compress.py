"""Compression engines and variants on the same questions, in one run: float32 against bfloat16,
int8 from three engines (PyTorch dynamic quantisation — naive and as ``--dtype int8`` sets it —,
ONNX Runtime's dynamic int8, OpenVINO with int8 weights) and heads pruned by importance.

    python benchmarks/bench_compress.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --titles French_and_Indian_War,Force --limit 300
    python benchmarks/bench_compress.py --model ../shared/models/minilm-l6-squad2-demo \
        --data ../shared/data/squad-v2-dev-half.json --titles French_and_Indian_War,Force --limit 100 --random-l12-h384

Every way runs the same windows in the same length-sorted batches (xdanalysis's prediction path);
ONNX Runtime and OpenVINO are called inside that same loop. Prints the CPU features found (VNNI,
AMX, AVX512-BF16), the float32, bfloat16 and int8 (dynamically quantised Linear) matmul rates
measured in the same run, then per way: questions/second (median of ``--rounds`` passes), the ratio to
float32, achieved GFLOP/s
(float32's operation count), the official F1 and its change, the answers that change, and the
process's peak RSS so far. ONNX Runtime and OpenVINO are optional: ``pip install onnxruntime onnx
openvino`` (a way whose package is missing is reported and skipped).
"""

from __future__ import annotations

import argparse
import copy
import sys
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_inference import window_flops  # noqa: E402
from bench_precision import matmul_rate  # noqa: E402
from timing import add_question_arguments, peak_rss_mb, random_l12_h384, timed_ms  # noqa: E402

from xdanalysis.compress.importance import head_importance, heads_to_prune  # noqa: E402
from xdanalysis.core.data import gold_answers, load_squad, title_list  # noqa: E402
from xdanalysis.core.metrics import squad_v2_scores  # noqa: E402
from xdanalysis.core.settings import NAIVE_INT8, Int8Settings  # noqa: E402
from xdanalysis.model.device import cpu_flags  # noqa: E402
from xdanalysis.model.forward import run_windows  # noqa: E402
from xdanalysis.model.loading import load_qa_model  # noqa: E402
from xdanalysis.model.predict import decode_windows  # noqa: E402
from xdanalysis.model.pruning import prune_heads  # noqa: E402
from xdanalysis.model.quantize import quantize_int8  # noqa: E402
from xdanalysis.model.windows import prepare_windows  # noqa: E402

FEATURES = {"AVX2": ["avx2"], "AVX512": ["avx512f"], "VNNI": ["avx512_vnni", "avx_vnni"],
            "AVX512-BF16": ["avx512_bf16"], "AMX": ["amx_tile", "amx_int8", "amx_bf16"]}


def int8_linear_rate(size: int = 1024, repeats: int = 5) -> float:
    """GFLOP/s of a dynamically quantised int8 Linear (activations quantised per call, as in the model)."""
    layer = quantize_int8(SimpleNamespace_model(torch.nn.Linear(size, size)), NAIVE_INT8).layer
    x = torch.randn(size, size)
    with torch.inference_mode():
        layer(x)
        return 2 * size**3 / (min(timed_ms(lambda: layer(x)) for _ in range(repeats)) / 1000) / 1e9


class SimpleNamespace_model(torch.nn.Module):  # noqa: N801 - a one-layer "model" for quantize_int8
    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.config = SimpleNamespace(model_type="matmul")


class SessionModel(torch.nn.Module):
    """An ONNX Runtime or OpenVINO compiled model behind the torch call our forward pass makes."""

    def __init__(self, call):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # where the inputs go: the CPU
        self.call = call

    def forward(self, **inputs):
        start, end = self.call({k: v.numpy() for k, v in inputs.items()})
        return SimpleNamespace(start_logits=torch.from_numpy(start), end_logits=torch.from_numpy(end))


def onnx_export(model, folder: Path) -> Path:
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = {k: torch.ones(2, 16, dtype=torch.long) for k in names}
    path = folder / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (), str(path), kwargs=example, input_names=names,
                          output_names=["start_logits", "end_logits"], opset_version=17, dynamo=False,
                          dynamic_axes={k: {0: "batch", 1: "tokens"} for k in names + ["start_logits", "end_logits"]})
    return path


def onnxruntime_way(model, folder: Path, name: str):
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = folder / "model.onnx"
    if not path.exists():
        onnx_export(model, folder)
    if "int8" in name:
        quantised = folder / "model-int8.onnx"
        quantize_dynamic(str(path), str(quantised), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        path = quantised
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads leave the cores
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return SessionModel(lambda feed: session.run(None, feed))


def openvino_way(model, folder: Path, name: str):
    import openvino as ov

    example = {k: torch.ones(2, 16, dtype=torch.long) for k in ("input_ids", "attention_mask", "token_type_ids")}
    converted = ov.convert_model(model, example_input=example)
    if "int8" in name:
        import nncf

        converted = nncf.compress_weights(converted, mode=nncf.CompressWeightsMode.INT8_SYM)
    compiled = ov.Core().compile_model(converted, "CPU")
    return SessionModel(lambda feed: tuple(compiled(feed).values())[:2])


ENGINES = {"onnxruntime": onnxruntime_way, "openvino": openvino_way}
ENGINE_WAYS = {"onnxruntime": ["onnxruntime fp32", "onnxruntime int8 (dynamic, per channel)"],
               "openvino": ["openvino fp32", "openvino int8 weights (nncf)"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_question_arguments(parser)
    parser.add_argument("--random-l12-h384", action="store_true",
                        help="time a random model of XtremeDistil l12-h384's shape (its F1 means nothing)")
    parser.add_argument("--rounds", type=int, default=3, help="passes per way; the median is reported")
    parser.add_argument("--prune", type=float, default=0.3, help="fraction of heads pruned by importance")
    parser.add_argument("--importance-questions", type=int, default=100,
                        help="questions from the other articles that head importance is measured on")
    args = parser.parse_args(argv)
    flags = cpu_flags()
    found = [name for name, names in FEATURES.items() if any(f in flags for f in names)]
    print(f"CPU features found: {', '.join(found) or 'none of ' + ', '.join(FEATURES)}; "
          f"{torch.get_num_threads()} threads; torch {torch.__version__}, quantized engine "
          f"{torch.backends.quantized.engine}")
    rates = {"float32": matmul_rate(torch.float32, "cpu", size=1024),
             "bfloat16": matmul_rate(torch.bfloat16, "cpu", size=1024, repeats=2), "int8": int8_linear_rate(1024)}
    print("matmul 1024^3 measured now: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items())
          + f" (int8/fp32 {rates['int8'] / rates['float32']:.2f}x, bf16/fp32 {rates['bfloat16'] / rates['float32']:.2f}x)")

    model, tokenizer = load_qa_model(args.model, device="cpu")
    if args.random_l12_h384:
        model = random_l12_h384()
    titles = title_list(args.titles)
    table = load_squad(args.data, titles=titles, limit=args.limit)
    training = load_squad(args.data, exclude_titles=titles).sample(n=args.importance_questions, random_state=0)
    windows = prepare_windows(table, tokenizer)
    flops = sum(window_flops(model.config, len(ids)) for ids in windows.input_ids)
    print(f"{'random l12-h384 shape' if args.random_l12_h384 else args.model}: {len(table)} questions, "
          f"{len(windows)} windows ({flops / len(windows) / 1e9:.2f} GFLOP each)")

    pruned = copy.deepcopy(model)
    prune_heads(pruned, heads_to_prune(head_importance(model, tokenizer, training, progress=False), args.prune))
    percent = f"{100 * args.prune:.0f}%"
    # Each way is built just before it is timed and dropped after: ONNX Runtime's and OpenVINO's thread pools
    # must not exist while another engine runs (they would compete with it for the cores).
    ways = {"float32": lambda: model, "bfloat16": lambda: copy.deepcopy(model).to(torch.bfloat16),
            "pytorch int8, naive (every Linear, per tensor)": lambda: quantize_int8(model, NAIVE_INT8),
            "pytorch int8, --dtype int8": lambda: quantize_int8(model, Int8Settings()),
            "pytorch int8, per channel, every Linear": lambda: quantize_int8(model, Int8Settings(keep_float=())),
            f"heads pruned {percent} (by importance)": lambda: pruned,
            f"heads pruned {percent} + pytorch int8": lambda: quantize_int8(pruned, Int8Settings())}
    folder = Path(tempfile.mkdtemp(prefix="bench-compress-"))
    for engine, names in ENGINE_WAYS.items():
        for name in names:
            ways[name] = (lambda engine=engine, name=name: ENGINES[engine](model, folder, name))
    report(ways, table, windows, prepare_windows(table.iloc[:8], tokenizer), flops, rates, args.rounds)
    print()
    return batch_dependence(model, table, windows)


def batch_dependence(model, table, windows) -> int:
    """Dynamic int8 quantises each batch's activations with one scale: batched, a window's answer depends on
    the windows it shares a batch with (and their padding). Counted: --dtype int8's quantisation run batched
    (``per_window=False``), batches of 32 against one window at a time; float32 the same way."""
    from dataclasses import replace

    for label, way in (("--dtype int8 batched (per_window=False)",
                        quantize_int8(model, replace(Int8Settings(), per_window=False))), ("float32", model)):
        answers = {}
        for size in (32, 1):
            logits = run_windows(way, windows, batch_size=size, progress=False)
            answers[size] = [d["answer"] for d in decode_windows(table, windows, logits)]
        changed = sum(a != b for a, b in zip(answers[32], answers[1]))
        print(f"{label}, batches of 32 vs one window at a time: {changed}/{len(table)} answers differ "
              f"({100 * changed / len(table):.1f}%)")
    return 0


def report(ways: dict, table, windows, warm, flops: float, rates: dict, repeats: int = 3) -> int:
    import gc

    gold, n, rows = gold_answers(table), len(table), []
    for name, make in ways.items():
        try:
            way = make()
        except ImportError as exc:
            print(f"  {name}: skipped ({exc.name} is not installed: pip install 'xdanalysis[compress-engines]')")
            continue
        run_windows(way, warm, progress=False)  # warm-up on a few questions
        rounds = []
        for _ in range(repeats):  # the median of a few passes: a busy machine slows one pass, not all
            started = time.perf_counter()
            logits = run_windows(way, windows, progress=False)
            rounds.append(time.perf_counter() - started)
        seconds = statistics.median(rounds)
        answers = [d["answer"] for d in decode_windows(table, windows, logits)]
        f1 = squad_v2_scores(gold, dict(zip(table["id"], answers)))["f1"]
        rows.append({"way": name, "seconds": seconds, "answers": answers, "f1": f1, "rss": peak_rss_mb()})
        print(f"  {name}: {n / seconds:.1f} q/s (passes {', '.join(f'{r:.1f}' for r in rounds)} s), F1 {f1:.2f}",
              flush=True)
        del way
        gc.collect()
    base = rows[0]
    print("\n| way | q/s | × fp32 | GFLOP/s | % fp32 mm | % int8 mm | F1 | ΔF1 | answers changed | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        achieved = flops / row["seconds"] / 1e9
        changed = sum(a != b for a, b in zip(row["answers"], base["answers"]))
        print(f"| {row['way']} | {n / row['seconds']:.1f} | {base['seconds'] / row['seconds']:.2f} | {achieved:.1f} | "
              f"{100 * achieved / rates['float32']:.0f}% | {100 * achieved / rates['int8']:.0f}% | {row['f1']:.2f} | "
              f"{row['f1'] - base['f1']:+.2f} | {changed}/{n} ({100 * changed / n:.1f}%) | {row['rss']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
