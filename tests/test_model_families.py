"""Every model family the toolkit predicts with is supported, or refused by name, by the analyses that
reach inside the model: attribution, patching, the layer lens and CKA."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xdanalysis.core.data import load_squad
from xdanalysis.core.settings import WindowSettings
from xdanalysis.interpret.attribution import Attributor, IntegratedGradients
from xdanalysis.interpret.layers import layer_lens
from xdanalysis.interpret.patching import patch_abstention
from xdanalysis.interpret.representations import cka_map
from xdanalysis.model.forward import batch_tensors
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.windows import prepare_windows

CONTEXT = "The tower was built by Gustave Eiffel in 1889. It is made of iron."
SWAPPED = CONTEXT.replace("tower", "@").replace("iron", "tower").replace("@", "iron")


@pytest.fixture(scope="module")
def xlnet(tiny_xlnet_dir):
    return load_qa_model(tiny_xlnet_dir, allow_random_head=True, device="cpu")


def test_xlnet_gradient_x_input_is_read_on_the_right_axis(xlnet):
    model, tokenizer = xlnet
    explain = Attributor(model, tokenizer, method="gradient_x_input")
    attribution = explain.attribute("Who built the tower?", CONTEXT, target="null_odds")
    assert len(attribution.scores) == len(attribution.tokens) > 10
    # by hand: the same window through inputs_embeds (batch-first), gradient times embedding per token
    frame = pd.DataFrame({"question": ["Who built the tower?"], "context": [CONTEXT]})
    inputs = batch_tensors(prepare_windows(frame, tokenizer, WindowSettings()), [attribution.window])
    embeddings = model.get_input_embeddings()(inputs["input_ids"]).detach().requires_grad_(True)
    output = model(inputs_embeds=embeddings, **{k: v for k, v in inputs.items() if k != "input_ids"})
    (s, e), cls = attribution.span_tokens, attribution.cls_index
    start, end = output.start_logits[0], output.end_logits[0]
    (start[cls] + end[cls] - start[s] - end[e]).backward()
    by_hand = (embeddings.grad * embeddings).sum(-1)[0].detach().numpy()
    np.testing.assert_allclose(attribution.scores, by_hand, rtol=1e-4, atol=1e-6)
    merged = explain.attribute_context("Who built the tower?", CONTEXT)
    assert set(merged.words["kind"]) == {"question", "context"}


def test_xlnet_integrated_gradients_are_refused_by_name(xlnet):
    model, tokenizer = xlnet
    with pytest.raises(ValueError, match="'xlnet' embeds its tokens sequence-first.*gradient_x_input"):
        Attributor(model, tokenizer, method=IntegratedGradients(n_steps=4)).attribute("Who built it?", CONTEXT)


def test_xlnet_patching_everything_with_the_rewrite_gives_the_rewrite(xlnet):
    model, tokenizer = xlnet
    pairs = pd.DataFrame({"id": ["p"], "question": ["Who built it?"], "original_context": [CONTEXT],
                          "probed_context": [SWAPPED]})
    lengths = [len(tokenizer("Who built it?", context)["input_ids"]) for context in (CONTEXT, SWAPPED)]
    assert lengths[0] == lengths[1]  # so "all" is every position
    frame = patch_abstention(model, tokenizer, pairs, progress=False)
    everything = frame[frame["site"] == "all"]
    assert len(everything) == model.config.n_layer
    assert np.allclose(everything["patched_null_odds"], everything["probed_null_odds"], atol=1e-4)


def test_xlnet_layer_lens_and_cka_run(xlnet, squad_file):
    model, tokenizer = xlnet
    table = load_squad(squad_file).iloc[:3]
    lens = layer_lens(model, tokenizer, table, progress=False)
    assert list(lens.per_layer["layer"]) == list(range(model.config.n_layer + 1))
    similarity = cka_map(model, model, tokenizer, table)
    assert np.allclose(np.diag(similarity.matrix.to_numpy()), 1.0, atol=1e-4)


def test_a_model_returning_no_hidden_states_is_refused_by_name(tiny, squad_file):
    model, tokenizer = tiny

    class Silent(type(model)):
        def forward(self, *args, **kwargs):
            output = super().forward(*args, **kwargs)
            output.hidden_states = None
            return output

    silent = Silent(model.config).eval()
    silent.load_state_dict(model.state_dict())
    table = load_squad(squad_file).iloc[:2]
    for analysis in (lambda: layer_lens(silent, tokenizer, table, progress=False),
                     lambda: cka_map(silent, model, tokenizer, table)):
        with pytest.raises(ValueError, match="model type 'bert' \\(Silent\\) returns no hidden_states"):
            analysis()
