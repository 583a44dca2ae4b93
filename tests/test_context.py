"""Context beyond the sentence (issue 18): packed sentences and FLERT-style margins, built by one
function (aioner_scheme.document_windows) for training and tagging, saved in the config."""

import random

import pytest

from aioner_scheme import CONTEXTS, document_windows, labelled_budget

TEXT = (
    "BRCA1 is a gene. Aspirin helps a lot with pain in most patients. Cancer kills. "
    "The BRCA1 protein binds DNA and repairs breaks in it."
)


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_word_labelled_once_within_the_budget(context):
    rng = random.Random(0)
    for _ in range(300):
        counts = [[rng.randint(1, 9) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 6))]
        budget, margin = rng.randint(8, 40), rng.randint(1, 3)
        wins = document_windows(counts, budget, context, margin)
        flat = [min(n, labelled_budget(budget, context, margin)) for sent in counts for n in sent]
        labelled = [i for _, a, b, _ in wins for i in range(a, b)]
        assert labelled == list(range(len(flat)))  # each word once, in order
        for left, a, b, right in wins:
            assert left <= a < b <= right
            assert sum(flat[left:right]) <= budget
            if context != "margin":
                assert (left, right) == (a, b)
            else:
                assert sum(flat[left:a]) <= margin and sum(flat[b:right]) <= margin


def test_pack_keeps_sentences_whole_and_margins_take_whole_neighbour_words():
    counts = [[1, 2, 1], [3, 1], [2, 2, 2, 2], [1]]
    assert document_windows(counts, 8) == [(0, 0, 3, 3), (3, 3, 5, 5), (5, 5, 9, 9), (9, 9, 10, 10)]
    assert document_windows(counts, 8, "pack") == [(0, 0, 5, 5), (5, 5, 9, 9), (9, 9, 10, 10)]
    # margin 2 leaves 4 sub-words to label: the 4-word sentence is cut in two, each half sees the other
    assert document_windows(counts, 8, "margin", 2) == [
        (0, 0, 3, 3),
        (2, 3, 5, 6),
        (4, 5, 7, 8),
        (6, 7, 9, 10),
        (8, 9, 10, 10),
    ]
    with pytest.raises(ValueError, match="no room"):
        document_windows(counts, 8, "margin", 4)
    with pytest.raises(ValueError, match="context must be"):
        document_windows(counts, 8, "document")


def _rows(text):
    from aioner_text import segment

    return [
        {"tokens": [text[s:e] for s, e in sent], "labels": [0] * len(sent), "task": "ALL", "document_id": "d1"}
        for sent in segment(text)
    ]


@pytest.mark.parametrize("context,margin", [("sentence", 0), ("pack", 0), ("margin", 6)])
def test_training_and_tagging_build_the_same_context_windows(context, margin):
    from aioner.features import encode_rows
    from aioner.testing import tiny_tagger
    from aioner_scheme import window_budget
    from pipeline_aioner import AIONERTagger

    model, tokenizer = tiny_tagger()
    model.config.context, model.config.context_margin = context, margin
    model.config.window_length = 24  # small, so that packing and margins have to choose
    tagger = AIONERTagger(model, tokenizer)
    budget = window_budget(tokenizer, model.config.window_length, model.encoder.config)
    rows = _rows(TEXT)
    assert len(rows) == 4
    trained = encode_rows(rows, ["O-ALL"], tokenizer, tagger.scheme, budget, context=context, margin=margin)
    tagged = tagger.windows_of([TEXT], "ALL")
    assert [w.input_ids for w in tagged] == [f.input_ids for f in trained]
    assert all(len(f.input_ids) <= 24 for f in trained)
    if context == "pack":
        assert len(trained) < len(rows) + 1  # the two short sentences share a window
    if context == "margin":
        open_tag = tokenizer.convert_tokens_to_ids("<ALL>")
        assert any(f.input_ids.index(open_tag) > 1 for f in trained)  # context before the task tag
    # every word is labelled once: the windows' words are the text's words, in order
    words = [span for w in tagged for span in w.words]
    assert [TEXT[s:e] for s, e in words] == [t for r in rows for t in r["tokens"]]


@pytest.mark.parametrize("context,margin", [("pack", 0), ("margin", 8)])
def test_context_is_saved_and_tags_with_exact_offsets(tmp_path, context, margin):
    from transformers import pipeline

    from aioner.checkpoint import save_checkpoint
    from aioner.testing import gene_model

    model, tokenizer = gene_model()
    model.config.context, model.config.context_margin = context, margin
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    tagger = pipeline("token-classification", model=str(tmp_path / "ckpt"), trust_remote_code=True)
    assert (tagger.tagger.context, tagger.tagger.context_margin) == (context, margin)
    ents = tagger(TEXT, task="Gene")
    assert [e["text"] for e in ents] == [TEXT[e["start"] : e["end"]] for e in ents]
    assert len(ents) == sum(len(r["tokens"]) for r in _rows(TEXT))  # every word an entity: none lost, none twice
    stock = tagger.postprocess(tagger._forward(tagger.preprocess(TEXT, task="Gene")))
    assert stock == ents


def test_config_refuses_a_margin_that_fills_the_window():
    from modeling_aioner import AIONERConfig

    with pytest.raises(ValueError, match="no room"):
        AIONERConfig(context="margin", context_margin=200, window_length=256)
    with pytest.raises(ValueError, match="context_margin"):
        AIONERConfig(context="margin")
    assert AIONERConfig(context="pack", context_margin=5).context_margin == 0
