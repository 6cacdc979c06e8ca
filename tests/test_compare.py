"""Teacher vs student: paired bootstrap, transitions, alignment across tokenizers, KL at T."""

import json

import numpy as np
import pandas as pd
import pytest
from test_errors import hand_run

from xdanalysis.analysis.compare import compare
from xdanalysis.labs.tradeoff import tradeoff_table
from xdanalysis.core.metrics import question_scores
from xdanalysis.core.settings import DecodingSettings, WindowSettings
from xdanalysis.core.stats import kl_divergence, paired_bootstrap
from xdanalysis.interpret.soft_targets import attention_similarity, soft_target_kl, soft_targets, word_distributions
from xdanalysis.views.compare import (
    plot_attention_similarity,
    plot_slice_differences,
    plot_soft_targets,
    plot_tradeoff,
    plot_transitions,
)
from xdanalysis.core import Execution


def test_paired_bootstrap_matches_a_direct_computation():
    a = np.array([1, 0, 1, 0, 0.5, 1, 0, 0])
    b = np.array([1, 1, 1, 0, 1.0, 1, 1, 0])
    rng = np.random.default_rng(3)
    direct = []
    for _ in range(400):
        picks = rng.integers(0, len(a), size=len(a))
        direct.append((b[picks] - a[picks]).mean())
    direct = np.array(direct)
    result = paired_bootstrap(a, b, n_boot=400, seed=3)
    assert result["difference"] == pytest.approx((b - a).mean())
    assert (result["low"], result["high"]) == pytest.approx((np.quantile(direct, 0.025), np.quantile(direct, 0.975)))
    assert result["p_value"] == pytest.approx(min(1, 2 * min((direct <= 0).mean(), (direct >= 0).mean())))
    same = paired_bootstrap(a, a, n_boot=100)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def rescored(table, answers):
    table = table.copy()
    table["answer"] = table["id"].map(answers).fillna(table["answer"])
    exact, f1 = question_scores(dict(zip(table["id"], table["answer_texts"])), dict(zip(table["id"], table["answer"])))
    table["exact"], table["f1"] = table["id"].map(exact), table["id"].map(f1)
    return table


def test_transition_counts_and_cells_on_hand_built_runs():
    teacher = hand_run()
    # the student abstains where the teacher was right (c), answers an unanswerable one (ca),
    # and gets the partial 'long' one right
    student = rescored(teacher, {"c": "", "ca": "iron", "long": "1889"})
    result = compare(teacher, student, n_boot=100)
    t = result.transitions
    assert t.loc["correct", "abstained"] == 1
    assert t.loc["correct_abstention", "false_answer"] == 1
    assert t.loc["partial_long", "correct"] == 1
    assert t.to_numpy().sum() == len(teacher)
    assert int(np.trace(t.to_numpy())) == len(teacher) - 3
    assert list(result.cell("correct", "abstained")["id"]) == ["c"]
    assert result.transition_rates.loc["correct", "abstained"] == 1.0
    assert result.agreement["same answer text"] == pytest.approx(6 / 9)
    assert result.agreement["same abstain decision"] == pytest.approx(7 / 9)
    overall = result.metrics.set_index(["group", "metric"]).loc[("overall", "EM")]
    assert overall["difference"] == pytest.approx(100 * (student["exact"].mean() - teacher["exact"].mean()))
    frame = result.slice_differences("question type")
    assert frame["count"].sum() == len(teacher)
    assert list(frame["difference"].abs()) == sorted(frame["difference"].abs(), reverse=True)
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_transitions(result)
    from xdanalysis.analysis.outcomes import OUTCOMES

    assert [t.get_text() for t in ax.get_xticklabels()] == OUTCOMES  # every panel the same layout, empty ones too
    shown = np.asarray(ax.images[0].get_array())
    assert shown.shape == (len(OUTCOMES), len(OUTCOMES))
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted(result.transitions.to_numpy().ravel().tolist())
    plot_slice_differences(frame)


def test_runs_over_different_questions_are_refused():
    teacher = hand_run()
    student = teacher[teacher["id"] != "c"]
    with pytest.raises(ValueError, match=r"1 only in teacher \(e.g. \['c'\]\).*intersect=True.*8 shared"):
        compare(teacher, student)
    assert len(compare(teacher, student, intersect=True, n_boot=50).joined) == 8


def test_kl_at_temperature_by_hand():
    assert kl_divergence([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))
    context = "ab cd"
    offsets = np.array([[-1, -1], [-1, -1], [0, 2], [3, 5], [-1, -1]])
    student = word_distributions(context, offsets, [0.0, 9.0, 1.0, 2.0, 9.0], [0.0, 9, 0.0, 0.0, 9], temperature=2.0)
    # softmax over [CLS], ab, cd of logits / 2: [0, .5, 1]
    expected = np.exp([0.0, 0.5, 1.0]) / np.exp([0.0, 0.5, 1.0]).sum()
    np.testing.assert_allclose(student["p_start"], expected)
    teacher = word_distributions(context, offsets, [1.0, 0, 0.0, 3.0, 0], [0.0, 0, 0.0, 0.0, 0], temperature=2.0)
    table = pd.concat([student.assign(model="s", temperature=2.0), teacher.assign(model="t", temperature=2.0)])
    kl = soft_target_kl(table, "s", "t").iloc[0]
    q = np.exp([0.5, 0.0, 1.5]) / np.exp([0.5, 0.0, 1.5]).sum()
    # KL(teacher || student): the direction distillation_loss minimises (kl_div(log p_s, p_t)) ...
    assert kl["KL start"] == pytest.approx(np.sum(q * np.log(q / expected)))
    assert kl["KL end"] == pytest.approx(0.0)
    # ... and the reverse beside it, which differs
    assert kl["reverse KL mean"] == pytest.approx(np.sum(expected * np.log(expected / q)) / 2)
    assert kl["reverse KL mean"] != pytest.approx(kl["KL mean"])
    # a higher temperature flattens the distribution: entropy grows towards log(3)
    entropies = [-(d * np.log(d)).sum() for d in (
        word_distributions(context, offsets, [0.0, 9, 1.0, 2.0, 9], [0.0] * 5, temperature=t)["p_start"]
        for t in (0.5, 1.0, 4.0))]
    assert entropies[0] < entropies[1] < entropies[2] < np.log(3)


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A byte-level BPE tokenizer (RoBERTa style: leading spaces inside tokens) trained here."""
    from conftest import LONG_CONTEXT, SHORT_CONTEXT
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([LONG_CONTEXT, SHORT_CONTEXT] * 3, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tokenizer.token_to_id("<s>")), ("</s>", tokenizer.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                   sep_token="</s>", pad_token="<pad>", unk_token="<unk>")


def test_alignment_between_two_different_tokenizers(tiny_model_dir, bpe_tokenizer):
    from conftest import SHORT_CONTEXT

    from xdanalysis.model.loading import load_qa_model
    from xdanalysis.model.windows import prepare_windows

    _, wordpiece = load_qa_model(tiny_model_dir)
    table = pd.DataFrame({"question": ["When was the Eiffel Tower finished?"], "context": [SHORT_CONTEXT]})
    targets = {"Eiffel": SHORT_CONTEXT.index("Eiffel"), "World's": SHORT_CONTEXT.index("World's"),
               "1889": SHORT_CONTEXT.index("1889")}
    for tokenizer in (wordpiece, bpe_tokenizer):
        offsets = prepare_windows(table, tokenizer, windowing=WindowSettings(128, 32))["offsets"][0]
        pieces = [SHORT_CONTEXT[s:e] for s, e in offsets if s >= 0]
        assert "".join(pieces).replace(" ", "") == SHORT_CONTEXT.replace(" ", "")
        for word, char in targets.items():
            # put all the start mass on the token holding the word's first character, and the end
            # mass on the token holding its last character: both must land on that word
            token = next(i for i, (s, e) in enumerate(offsets) if s >= 0 and s <= char < e)
            last = next(i for i, (s, e) in enumerate(offsets) if s >= 0 and s <= char + len(word) - 1 < e)
            start = np.full(len(offsets), -50.0)
            end = np.full(len(offsets), -50.0)
            start[token], end[last] = 50.0, 50.0
            frame = word_distributions(SHORT_CONTEXT, offsets, start, end).set_index("word")
            assert frame.loc[word, "p_start"] == pytest.approx(1.0), (tokenizer.__class__.__name__, word)
            assert frame.loc[word, "p_end"] == pytest.approx(1.0)
    # the byte-level tokenizer really does put the space inside its tokens
    bpe_offsets = prepare_windows(table, bpe_tokenizer, windowing=WindowSettings(128, 32))["offsets"][0]
    assert any(SHORT_CONTEXT[s] == " " for s, e in bpe_offsets if s >= 0)


def test_soft_targets_tradeoff_and_attention_transfer(tiny_model_dir, tmp_path, squad_file):
    from conftest import build_tiny_model

    from xdanalysis.core.data import load_squad
    from xdanalysis.model.loading import load_qa_model
    from xdanalysis.runs.run import predict_run

    small_dir = tiny_model_dir
    big_dir = build_tiny_model(tmp_path / "big", layers=3, seed=1, hidden=48)
    small, big = load_qa_model(small_dir), load_qa_model(big_dir)
    table = load_squad(squad_file)
    soft = soft_targets({"student": small, "teacher": big}, table.loc[4, "question"], table.loc[4, "context"],
                        temperatures=(1.0, 4.0))
    sums = soft.groupby(["model", "temperature"])[["p_start", "p_end"]].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0)
    kl = soft_target_kl(soft, "student", "teacher")
    assert list(kl["temperature"]) == [1.0, 4.0] and (kl["KL mean"] >= 0).all()
    assert not np.allclose(soft[soft["temperature"] == 1.0]["p_start"], soft[soft["temperature"] == 4.0]["p_start"])

    runs = {name: predict_run(path, squad_file, tmp_path / name, execution=Execution(progress=False)) for name, path in
            (("student", small_dir), ("teacher", big_dir))}
    frame = tradeoff_table({"student": (*small, small_dir, runs["student"]), "teacher": (*big, big_dir, runs["teacher"])},
                           table.iloc[:4])
    assert frame.set_index("model").loc["teacher", "layers"] == 3
    assert frame.set_index("model").loc["teacher", "parameters (M)"] > frame.set_index("model").loc["student", "parameters (M)"]
    assert (frame["ms/question"] > 0).all() and (frame["disk (MB)"] > 0).all()
    assert (frame["ms low"] <= frame["ms/question"]).all() and (frame["ms/question"] <= frame["ms high"]).all()
    assert (frame["timed rounds"] == 3).all()
    unanswerable = 100 * (~runs["teacher"].table["has_answer"]).mean()
    assert frame["always abstaining"].to_numpy() == pytest.approx([unanswerable, unanswerable], abs=0.01)

    distance = attention_similarity(small[0], big[0], small[1], table.iloc[:3], windowing=WindowSettings(64, 32))
    assert distance.shape == (2, 3) and (distance >= 0).all() and (distance <= np.sqrt(np.log(2)) + 1e-9).all()
    same = attention_similarity(small[0], small[0], small[1], table.iloc[:2], windowing=WindowSettings(64, 32))
    np.testing.assert_allclose(np.diag(same), 0.0, atol=1e-6)
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_tradeoff(frame)
    assert ax.get_ylim() == (-4, 105)  # the whole scale (0 kept off the axis line), not a zoom on a few points
    numbers = sorted(t.get_text() for t in ax.texts)
    assert numbers == [str(k) for k in range(1, len(frame) + 1)]  # one number per model, its name in the key
    assert all(any(line.get_label().startswith(f"{k}: {m} (") for line in ax.get_lines())
               for k, m in enumerate(frame["model"], start=1))
    assert any(line.get_label().startswith("always abstaining") for line in ax.get_lines())
    ax.figure.canvas.draw()  # every label inside the axes
    box = ax.get_window_extent()
    for text in ax.texts:
        inside = text.get_window_extent()
        assert box.x0 - 1 <= inside.x0 and inside.x1 <= box.x1 + 1, text.get_text()
    plot_attention_similarity(distance)
    plot_soft_targets(soft, 4.0)


def test_distillation_widgets(tiny_model_dir, tmp_path, squad_file):
    from conftest import build_tiny_model

    from xdanalysis.apps.model_widgets import SoftTargetExplorer
    from xdanalysis.apps.widgets import TransitionExplorer
    from xdanalysis.core.data import load_squad
    from xdanalysis.model.loading import load_qa_model

    teacher = hand_run()
    student = rescored(teacher, {"c": "", "ca": "iron"})
    comparison = compare(teacher, student, n_boot=50)
    explorer = TransitionExplorer(comparison)
    # it opens on a cell that changed, offers only cells with questions (with their counts), names columns by run
    assert (explorer.outcome_a.value, explorer.outcome_b.value) == ("correct", "abstained")
    assert "<b>1</b> question(s)" in explorer.listing.value and "When was the Eiffel Tower finished?" in explorer.listing.value
    assert "teacher null odds" in explorer.listing.value and "null_odds_a" not in explorer.listing.value
    for label, outcome in explorer.outcome_b.options:
        assert label == f"{outcome} ({int(comparison.transitions.loc['correct', outcome])})" and not label.endswith("(0)")
    explorer.outcome_a.value = "correct_abstention"
    assert [o for _, o in explorer.outcome_b.options] == [
        o for o in comparison.transitions.columns if comparison.transitions.loc["correct_abstention", o] > 0]
    assert "question(s): teacher correct_abstention" in explorer.listing.value

    models = {"teacher": load_qa_model(build_tiny_model(tmp_path / "t", layers=3, seed=2)),
              "student": load_qa_model(tiny_model_dir)}
    soft = SoftTargetExplorer(models, load_squad(squad_file), temperatures=(1, 4))
    first = soft.kl.value
    soft.temperature.value = 4.0
    assert soft.kl.value != first and "T=4" in soft.kl.value
    assert soft.image.value[:4] == b"\x89PNG"


def test_runs_over_different_gold_are_refused_and_other_settings_warned(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.runs.run import predict_run

    small = {"windowing": WindowSettings(64, 16), "execution": Execution(progress=False)}
    first = predict_run(tiny_model_dir, squad_file, tmp_path / "a", **small)
    payload = json.loads(squad_file.read_text())
    payload["data"][1]["paragraphs"][0]["qas"][0]["answers"] = [{"text": "France", "answer_start": 24}]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(payload))
    second = predict_run(tiny_model_dir, other, tmp_path / "b", **small)
    assert set(first.table["id"]) == set(second.table["id"])
    with pytest.raises(ValueError, match=r"different data: 1 shared question id\(s\) .*'p1'"):
        compare(first, second)
    third = predict_run(tiny_model_dir, squad_file, tmp_path / "c", decoding=DecodingSettings(n_best_size=5), **small)
    with pytest.warns(UserWarning, match=r"different settings \(n_best_size: 20 vs 5\)"):
        compare(first, third)


def test_speed_reads_as_a_median_and_its_measured_spread_never_an_interval():
    from xdanalysis.views.tables import readable

    shown = readable(pd.DataFrame({"ms/question": [49.5], "ms low": [45.8], "ms high": [91.5], "timed rounds": [3]}))
    assert list(shown.columns) == ["ms/question (median round)", "fastest round (ms/question)",
                                   "slowest round (ms/question)", "timed rounds"]
    assert not any("CI" in c or "interval" in c for c in shown.columns)
