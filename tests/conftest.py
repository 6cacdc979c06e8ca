"""Offline fixtures: tiny random BERT QA models and small SQuAD 2.0 files written here.

``XDANALYSIS_SHARED`` (set by .ci/run) points at the shared real assets; without it the core
suite still runs, on a WordPiece vocabulary built in the fixture.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

SHARED_ENV = "XDANALYSIS_SHARED"


def shared_path() -> Path | None:
    value = os.environ.get(SHARED_ENV)
    if not value:
        return None
    path = Path(value)
    if not (path / "data" / "squad-v2-dev-half.json").exists():
        raise RuntimeError(f"{SHARED_ENV}={value} does not hold data/squad-v2-dev-half.json")
    return path


needs_shared = pytest.mark.skipif(shared_path() is None, reason=f"{SHARED_ENV} not set (real assets)")


@pytest.fixture(scope="session")
def shared():
    path = shared_path()
    if path is None:
        pytest.skip(f"{SHARED_ENV} not set")
    return path


# A small context long enough, at max_seq_length 64, to need several windows.
LONG_CONTEXT = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region "
    "in France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway who, "
    "under their leader Rollo, agreed to swear fealty to King Charles III of West Francia. Through "
    "generations of assimilation and mixing with the native Frankish and Roman-Gaulish populations, "
    "their descendants would gradually merge with the Carolingian-based cultures of West Francia. The "
    "distinct cultural and ethnic identity of the Normans emerged initially in the first half of the "
    "10th century, and it continued to evolve over the succeeding centuries. The castle at Caen was "
    "built by William the Conqueror in 1060."
)
SHORT_CONTEXT = "Paris is the capital of France. The Eiffel Tower was finished in 1889 for the World's Fair."


def _span(context: str, text: str, occurrence: int = 0) -> dict:
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(text, start + 1)
    return {"text": text, "answer_start": start}


def squad_payload() -> dict:
    """Eight questions over three paragraphs: answerable, unanswerable with plausible answers,
    an answer only in a late window, several gold answers."""
    return {
        "version": "v2.0",
        "data": [
            {
                "title": "Normans",
                "paragraphs": [
                    {
                        "context": LONG_CONTEXT,
                        "qas": [
                            {"id": "n1", "question": "In what country is Normandy located?", "is_impossible": False,
                             "answers": [_span(LONG_CONTEXT, "France"), _span(LONG_CONTEXT, "France")]},
                            {"id": "n2", "question": "Who was the leader of the Norse raiders?",
                             "is_impossible": False, "answers": [_span(LONG_CONTEXT, "Rollo")]},
                            {"id": "n3", "question": "   When was the castle at Caen built?",
                             "is_impossible": False, "answers": [_span(LONG_CONTEXT, "1060"),
                                                                 _span(LONG_CONTEXT, "in 1060")]},
                            {"id": "n4", "question": "Who gave their name to Normandy in the 1000s and 1100s?",
                             "is_impossible": True, "answers": [],
                             "plausible_answers": [_span(LONG_CONTEXT, "The Normans")]},
                        ],
                    }
                ],
            },
            {
                "title": "Paris",
                "paragraphs": [
                    {
                        "context": SHORT_CONTEXT,
                        "qas": [
                            {"id": "p1", "question": "What is the capital of France?", "is_impossible": False,
                             "answers": [_span(SHORT_CONTEXT, "Paris")]},
                            {"id": "p2", "question": "When was the Eiffel Tower finished?", "is_impossible": False,
                             "answers": [_span(SHORT_CONTEXT, "1889"), _span(SHORT_CONTEXT, "in 1889")]},
                            {"id": "p3", "question": "What is the capital of Spain?", "is_impossible": True,
                             "answers": [], "plausible_answers": [_span(SHORT_CONTEXT, "Paris")]},
                            {"id": "p4", "question": "How tall is the Eiffel Tower?", "is_impossible": True,
                             "answers": []},
                        ],
                    }
                ],
            },
        ],
    }


@pytest.fixture
def squad_file(tmp_path) -> Path:
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps(squad_payload()))
    return path


def _build_tokenizer(directory: Path):
    """The real uncased BERT tokenizer when shared assets are given, else a small WordPiece one."""
    from transformers import BertTokenizerFast

    shared = shared_path()
    if shared is not None:
        source = shared / "models" / "minilm-l6-h384-uncased"
        tokenizer = BertTokenizerFast.from_pretrained(source)
    else:
        import re

        words = set()
        for article in squad_payload()["data"]:
            for paragraph in article["paragraphs"]:
                words.update(re.findall(r"\w+|[^\w\s]", paragraph["context"].lower()))
                for qa in paragraph["qas"]:
                    words.update(re.findall(r"\w+|[^\w\s]", qa["question"].lower()))
        pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + list("abcdefghijklmnopqrstuvwxyz0123456789")
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words) + pieces
        vocab = list(dict.fromkeys(vocab))
        tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_tiny_model(directory: Path, layers: int = 2, seed: int = 0, with_head: bool = True, hidden: int = 32):
    import torch
    from transformers import BertConfig, BertForQuestionAnswering, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer(directory)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=512)
    torch.manual_seed(seed)
    model = (BertForQuestionAnswering if with_head else BertModel)(config)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qa"))


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """The tiny model loaded: ``(model, tokenizer)``, shared by a module's tests (which leave it as it is)."""
    from xdanalysis.model.loading import load_qa_model

    return load_qa_model(tiny_model_dir)


@pytest.fixture(scope="session")
def encoder_only_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-encoder"), with_head=False)


@pytest.fixture
def clean_copy(tmp_path):
    def copy(path: Path) -> Path:
        target = tmp_path / path.name
        shutil.copytree(path, target)
        return target
    return copy


def build_tiny_xlnet(directory: Path, seed: int = 0) -> Path:
    """A tiny random XLNet QA model (context first, <cls> last, left padding) with a unigram
    (sentencepiece-style) tokenizer trained here on the test texts."""
    import json as _json

    import torch
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import XLNetConfig, XLNetForQuestionAnsweringSimple, XLNetTokenizer

    texts = [LONG_CONTEXT, SHORT_CONTEXT]
    for article in squad_payload()["data"]:
        for paragraph in article["paragraphs"]:
            texts += [qa["question"] for qa in paragraph["qas"]]
    trainer = SentencePieceUnigramTokenizer()
    trainer.train_from_iterator(texts * 3, vocab_size=300, show_progress=False, unk_token="<unk>",
                                special_tokens=["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>"])
    vocab = [tuple(entry) for entry in _json.loads(trainer.to_str())["model"]["vocab"]]
    tokenizer = XLNetTokenizer(vocab=vocab, unk_id=0)
    assert tokenizer.padding_side == "left" and tokenizer.is_fast
    config = XLNetConfig(vocab_size=len(tokenizer), d_model=32, n_layer=2, n_head=2, d_inner=64,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    XLNetForQuestionAnsweringSimple(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_xlnet_dir(tmp_path_factory) -> Path:
    return build_tiny_xlnet(tmp_path_factory.mktemp("tiny-xlnet"))
