"""``embed_texts`` (and ``embed`` on tokenizer output) with tiny models built offline from configs."""

from __future__ import annotations

import inspect
import logging
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
torch.set_num_threads(1)

from infogauss.contrastive import embed, embed_texts  # noqa: E402

WORDS = "the a cat dog sat on mat runs fast slow red blue big small house tree".split()
TEXTS = ["the cat sat on the mat", "a dog", "red", "the big blue house runs fast", "small tree",
         "a slow red cat sat", "dog dog dog"]


def _tiny_bert(tmp_path=None):
    transformers = pytest.importorskip("transformers", reason="needs transformers: infogauss[text]")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    params = inspect.signature(transformers.BertTokenizer.__init__).parameters
    if "vocab" in params:  # transformers >= 5 takes the vocabulary itself
        tok = transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    else:  # pragma: no cover - transformers 4.x reads a vocab file
        path = tmp_path / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n")
        tok = transformers.BertTokenizer(vocab_file=str(path))
    assert tok("cat")["input_ids"] == [2, vocab.index("cat"), 3]  # a real vocabulary, not [UNK]s
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers.BertModel(config), tok


def _one_by_one(model, tok, pool):
    """Each text alone (no padding), pooled by hand: the reference."""
    model.eval()
    rows = []
    with torch.no_grad():
        for t in TEXTS:
            h = model(**tok([t], return_tensors="pt")).last_hidden_state[0]
            rows.append((h.mean(0) if pool == "mean" else h[0]).numpy())
    return np.stack(rows)


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_transformers_model_equals_text_by_text(tmp_path, pool):
    model, tok = _tiny_bert(tmp_path)
    model.train()
    z = embed_texts(model, TEXTS, tokenizer=tok, pool=pool, batch_size=3)
    assert model.training  # borrowed, given back in its mode
    assert z.shape == (len(TEXTS), 32) and z.dtype == np.float32 and z.flags["C_CONTIGUOUS"]
    # padded, length-sorted batches give each text's own embedding, in the order of TEXTS
    np.testing.assert_allclose(z, _one_by_one(model, tok, pool), rtol=1e-4, atol=1e-5)


def test_embed_on_tokenizer_output_and_loader_of_dicts(tmp_path):
    model, tok = _tiny_bert(tmp_path)
    ref = embed_texts(model, TEXTS, tokenizer=tok)  # default pool for transformers: mean
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    np.testing.assert_allclose(embed(model, enc, pool="mean", batch_size=2), ref, rtol=1e-4, atol=1e-5)
    batches = [tok(TEXTS[s:s + 3], padding=True, return_tensors="pt") for s in range(0, 7, 3)]
    np.testing.assert_allclose(embed(model, batches, pool="mean"), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="token embeddings.*last_hidden_state.*pool='mean'"):
        embed(model, enc)
    pooled = embed(model, enc, output="pooler_output")
    assert pooled.shape == (7, 32)


def test_empty_and_bad_texts(tmp_path):
    model, tok = _tiny_bert(tmp_path)
    assert embed_texts(model, [], tokenizer=tok).shape == (0, 32)
    with pytest.raises(TypeError, match="single string: wrap it in a list"):
        embed_texts(model, "a cat", tokenizer=tok)
    with pytest.raises(TypeError, match=r"texts\[1\] is a int"):
        embed_texts(model, ["a", 3], tokenizer=tok)
    with pytest.raises(ValueError, match="`tokenizer` is required"):
        embed_texts(model, ["a cat"])
    with pytest.raises(ValueError, match="`pool` must be one of"):
        embed_texts(model, ["a cat"], tokenizer=tok, pool="max")


def test_nan_rows_are_named_in_the_callers_order(tmp_path):
    model, tok = _tiny_bert(tmp_path)
    target = TEXTS.index("red")  # sorted by length, it is fed last

    def poison(module, args, out):
        out.last_hidden_state[out.last_hidden_state.shape[1] == 3] = float("nan")  # 1-word texts
        return out

    handle = model.register_forward_hook(poison)
    try:
        with pytest.raises(ValueError, match=rf"rows \[{target}\]"):
            embed_texts(model, TEXTS, tokenizer=tok, batch_size=1)
    finally:
        handle.remove()


def test_sentence_transformer_model(tmp_path, caplog):
    st = pytest.importorskip("sentence_transformers", reason="needs sentence-transformers: infogauss[text]")
    bert, tok = _tiny_bert(tmp_path)
    bert.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    with caplog.at_level(logging.ERROR):  # "no sentence-transformers model found: mean pooling"
        model = st.SentenceTransformer(str(tmp_path / "tiny"), device="cpu")
    ref = model.encode(TEXTS, convert_to_numpy=True, batch_size=2)
    z = embed_texts(model, TEXTS, batch_size=3)
    assert z.dtype == np.float32 and z.shape == ref.shape
    np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(embed_texts(model, TEXTS, pool="mean"), ref, rtol=1e-4, atol=1e-5)
    assert embed_texts(model, []).shape == (0, 32)
    with pytest.raises(ValueError, match="max_seq_length"):
        embed_texts(model, TEXTS, max_length=8)
    # by path: a folder is loaded on the CPU (and sentence-transformers wraps a plain model)
    with caplog.at_level(logging.ERROR):
        np.testing.assert_allclose(embed_texts(str(tmp_path / "tiny"), TEXTS), ref, rtol=1e-4, atol=1e-5)


def test_loading_by_name_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"pip install 'infogauss\[text\]'"):
        embed_texts("some/model", ["a cat"])
