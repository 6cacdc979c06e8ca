"""Inside the model (issue 20): the layer lens, CKA, activation patching, the layer ranking."""

import numpy as np
import pandas as pd
import pytest
from conftest import build_tiny_model

from xdanalysis.core.data import load_squad
from xdanalysis.core.settings import WindowSettings
from xdanalysis.interpret.layers import fit_tuned_lens, layer_lens, qa_head
from xdanalysis.interpret.patching import encoder_layers, patch_abstention, patched
from xdanalysis.interpret.representations import cka, cka_map, rank_layer_subsets
from xdanalysis.model.forward import forward_windows
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.predict import predict_table
from xdanalysis.model.windows import prepare_windows

SMALL = WindowSettings(max_seq_length=64, doc_stride=16)


def test_the_last_layer_of_the_logit_lens_is_the_model_itself(tiny, squad_file):
    model, tokenizer = tiny
    table = load_squad(squad_file)
    lens = layer_lens(model, tokenizer, table, windowing=SMALL, progress=False)
    layers = model.config.num_hidden_layers
    assert list(lens.per_layer["layer"]) == list(range(layers + 1))
    predictions, _ = predict_table(model, tokenizer, table, windowing=SMALL, progress=False)
    last = lens.per_question[lens.per_question["layer"] == layers]
    assert list(last["answer"]) == list(predictions["answer"])
    assert np.allclose(last["null_odds"], predictions["null_odds"], atol=1e-5)
    windows = prepare_windows(table, tokenizer, SMALL)
    own = forward_windows(model, windows, range(len(windows)))
    for w, output in enumerate(own):
        np.testing.assert_allclose(lens.logits[layers][w][0], output.start_logits, atol=1e-5)
        np.testing.assert_allclose(lens.logits[layers][w][1], output.end_logits, atol=1e-5)
    # earlier layers are other decodings of the same questions, scored the official way
    assert len(lens.per_question) == (layers + 1) * len(table)
    assert lens.formed["answer_layer"].between(0, layers).all()
    distributions = lens.start_distributions(table["id"].iloc[0])
    assert distributions.shape[0] == layers + 1 and np.allclose(distributions.sum(axis=1), 1)


def test_the_tuned_lens_is_fitted_on_other_questions_and_read_like_the_logit_lens(tiny, squad_file):
    model, tokenizer = tiny
    table = load_squad(squad_file)
    tuned = fit_tuned_lens(model, tokenizer, table.iloc[:4], windowing=SMALL, epochs=2, progress=False)
    assert tuned.weight.shape == (model.config.num_hidden_layers + 1, model.config.hidden_size, 2)
    lens = layer_lens(model, tokenizer, table.iloc[4:], lens="tuned", tuned=tuned, windowing=SMALL, progress=False)
    assert len(lens.per_layer) == model.config.num_hidden_layers + 1 and lens.lens == "tuned"
    # its target is the model's own final distribution: the last layer's probe starts there and stays
    layers = model.config.num_hidden_layers
    np.testing.assert_allclose(tuned.weight[layers], qa_head(model).weight.detach().numpy().T, atol=1e-6)
    predictions, _ = predict_table(model, tokenizer, table.iloc[4:], windowing=SMALL, progress=False)
    last = lens.per_question[lens.per_question["layer"] == layers]
    assert list(last["answer"]) == list(predictions["answer"])
    assert not np.allclose(tuned.weight[0], qa_head(model).weight.detach().numpy().T)  # earlier probes moved
    with pytest.raises(ValueError, match="fit_tuned_lens"):
        layer_lens(model, tokenizer, table, lens="tuned", progress=False)
    with pytest.raises(ValueError, match="lens"):
        layer_lens(model, tokenizer, table, lens="logits", progress=False)


def test_cka_is_one_on_itself_and_invariant_to_rotation_and_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert cka(x, x) == pytest.approx(1.0)
    assert cka(x, 5.0 * x @ rotation) == pytest.approx(1.0)
    assert cka(x, rng.normal(size=(200, 8))) < 0.2  # unrelated
    # by hand: centred x, y = x[:, :1]: ||y'x||² / (||x'x|| ||y'y||)
    xc = x - x.mean(axis=0)
    y = xc[:, :1]
    assert cka(x, x[:, :1]) == pytest.approx(np.linalg.norm(y.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc)
                                                                           * np.linalg.norm(y.T @ y)))
    with pytest.raises(ValueError, match="same n"):
        cka(x, x[:10])


def test_cka_map_of_a_model_with_itself_has_a_unit_diagonal(tiny, squad_file):
    model, tokenizer = tiny
    similarity = cka_map(model, model, tokenizer, load_squad(squad_file), windowing=SMALL)
    frame = similarity.matrix
    assert similarity.tokens > 0 and similarity.labels == ("teacher", "student")
    assert frame.shape == (model.config.num_hidden_layers + 1,) * 2
    np.testing.assert_allclose(np.diag(frame.to_numpy()), 1.0, atol=1e-9)


def hooks(model) -> set:
    return {(id(m), key) for m in model.modules() for key in (*m._forward_hooks, *m._forward_pre_hooks)}


def test_patching_a_layer_with_its_own_activation_changes_nothing_and_hooks_never_leak(tiny):
    model, tokenizer = tiny
    windows = prepare_windows(pd.DataFrame({"question": ["Who built it?"],
                                            "context": ["The tower was built by Gustave Eiffel in 1889."]}), tokenizer)
    clean = forward_windows(model, windows, [0], hidden_states=True)[0]
    before = hooks(model)
    for layer in range(model.config.num_hidden_layers):
        positions = range(len(clean.start_logits))
        with patched(model, layer, positions, clean.hidden_states[layer + 1]):
            again = forward_windows(model, windows, [0])[0]
        np.testing.assert_allclose(again.start_logits, clean.start_logits, atol=1e-6)
    with pytest.raises(RuntimeError, match="inside"):
        with patched(model, 0, [0], clean.hidden_states[1][[0]]):
            raise RuntimeError("an error inside the block")
    assert hooks(model) == before  # removed, error or not
    after = forward_windows(model, windows, [0])[0]
    np.testing.assert_array_equal(after.start_logits, clean.start_logits)


def test_patching_everything_with_the_rewrite_gives_the_rewrite(tiny):
    model, tokenizer = tiny
    context = "The tower was built by Gustave Eiffel in 1889. It is made of iron."
    pairs = pd.DataFrame({"id": ["p"], "question": ["Who built it?"], "original_context": [context],
                          # two words swapped: the same tokens in another order, whatever the tokenizer
                          "probed_context": [context.replace("tower", "@").replace("iron", "tower").replace("@", "iron")]})
    frame = patch_abstention(model, tokenizer, pairs, progress=False)
    assert set(frame["site"]) == {"cls", "question", "all"}
    assert len(frame) == 3 * model.config.num_hidden_layers
    # the same question: its tokens sit at the same positions, and at the last layer every shared
    # position patched leaves only the original's extra tail
    same_length = len(tokenizer(pairs["question"][0], context)["input_ids"]) == \
        len(tokenizer(pairs["question"][0], pairs["probed_context"][0])["input_ids"])
    assert same_length  # so "all" is every position: the patched run is the rewrite's run, at any layer
    everything = frame[frame["site"] == "all"]
    assert np.allclose(everything["patched_null_odds"], everything["probed_null_odds"], atol=1e-5)
    assert np.allclose(everything["restored"], 1.0, atol=1e-4)
    assert np.isfinite(frame["patched_null_odds"]).all()


def test_the_ranking_keeps_the_layers_that_do_the_work():
    per_layer = pd.DataFrame({"layer": range(5), "F1": [0.0, 0.0, 40.0, 40.0, 60.0]})
    similarity = pd.DataFrame(np.eye(5) + 0.9 * (1 - np.eye(5)))
    similarity.iloc[2, 1] = similarity.iloc[1, 2] = 0.2  # layer 2 changes the representation most
    ranked = rank_layer_subsets(per_layer, similarity, keep=2)
    assert len(ranked) == 6  # C(4, 2)
    assert ranked["layers"].iloc[0] == "1,3"  # the layers behind lens layers 2 and 4 (student layers count from 0)
    assert ranked["score"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="keep"):
        rank_layer_subsets(per_layer, similarity, keep=5)


def test_a_model_without_a_qa_head_is_named(tmp_path):
    encoder = build_tiny_model(tmp_path / "encoder", with_head=False)
    from transformers import AutoModel

    with pytest.raises(ValueError, match="no extractive-QA head"):
        qa_head(AutoModel.from_pretrained(encoder))
    assert encoder_layers(load_qa_model(build_tiny_model(tmp_path / "qa"))[0])


def test_rank_layers_from_evidence_is_the_lens_and_cka_ranking(tiny, squad_file):
    from xdanalysis.interpret.layers import layer_lens
    from xdanalysis.interpret.representations import cka_map, rank_layer_subsets, rank_layers_from_evidence

    model, tokenizer = tiny
    table = load_squad(squad_file)
    ranking = rank_layers_from_evidence(model, tokenizer, table, keep=1, windowing=SMALL)
    by_hand = rank_layer_subsets(layer_lens(model, tokenizer, table, windowing=SMALL).per_layer,
                                 cka_map(model, model, tokenizer, table, windowing=SMALL), keep=1, metric="HasAns_F1")
    pd.testing.assert_frame_equal(ranking.ranked, by_hand)
    assert ranking.best == [int(by_hand["layers"].iloc[0])]
    assert ranking.rank_of(ranking.best) == 1 and ranking.rank_of([int(by_hand["layers"].iloc[-1])]) == len(by_hand)
    with pytest.raises(ValueError, match="not a ranked subset"):
        ranking.rank_of([0, 1])


def test_a_reader_from_a_run_reads_as_the_run_did(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.core import Execution, WindowSettings
    from xdanalysis.core.settings import DecodingSettings
    from xdanalysis.interpret import Reader, get_attention, layer_lens
    from xdanalysis.runs import predict_run

    windowing, decoding = WindowSettings(64, 16), DecodingSettings(null_score_diff_threshold=-0.5, n_best_size=5)
    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=windowing, decoding=decoding,
                      execution=Execution(allow_random_head=True, progress=False))
    reader = Reader.from_run(run.path, allow_random_head=True)  # a run directory is enough
    assert reader.windowing == windowing and reader.decoding == decoding
    lens = reader.layer_lens(run, progress=False)
    by_hand = layer_lens(reader.model, reader.tokenizer, run.table, windowing=windowing, decoding=decoding,
                         progress=False)
    pd.testing.assert_frame_equal(lens.per_layer, by_hand.per_layer)
    # the last layer of the logit lens is the model: it decides as the run did, at the run's own threshold
    final = lens.per_question[lens.per_question["layer"] == lens.per_layer["layer"].max()]
    assert final.set_index("id").loc[run.table["id"], "answer"].tolist() == run.table["answer"].tolist()
    row = run.table.iloc[0]
    seen = reader.attention(row["question"], row["context"])
    assert np.allclose(seen.attentions, get_attention(reader.model, reader.tokenizer, row["question"], row["context"],
                                                      windowing=windowing, decoding=decoding).attentions)
    with pytest.raises(TypeError, match="a Run or a run directory"):
        Reader.from_run(run.table)
