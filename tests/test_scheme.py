import pytest

from aioner_scheme import AIOScheme, Span, UnknownTaskError, windows


def test_default_scheme_has_the_papers_19_labels_in_order():
    scheme = AIOScheme()
    assert len(scheme.labels) == 19
    assert scheme.labels[:3] == ["B-Gene", "I-Gene", "O-Gene"]
    assert scheme.labels[-1] == "O-ALL"
    assert set(scheme.labels) == set(open_vocab())


def open_vocab():
    from conftest import corpus_file

    labels = corpus_file("AIO_label.vocab").read_text().split()
    return [l for l in labels if l != "O"] + ["O-ALL"]  # the original calls O-ALL plain "O"


def test_task_tags_and_new_types():
    scheme = AIOScheme({"Gene": ["Gene"], "AnEM": ["Organ", "Cell"]})
    assert scheme.tag_tokens() == ["<Gene>", "</Gene>", "<AnEM>", "</AnEM>"]
    assert scheme.labels == ["B-Gene", "I-Gene", "O-Gene", "B-Organ", "I-Organ", "B-Cell", "I-Cell", "O-AnEM"]


def test_encode_decode_round_trip_and_task_rules():
    scheme = AIOScheme()
    spans = [Span(0, 2, "Gene"), Span(3, 4, "Disease")]
    ids = scheme.encode(5, spans, "ALL")
    assert [scheme.labels[i] for i in ids] == ["B-Gene", "I-Gene", "O-ALL", "B-Disease", "O-ALL"]
    assert scheme.decode(ids) == spans
    with pytest.raises(ValueError, match="not annotated by task 'Gene'"):
        scheme.encode(5, spans, "Gene")
    with pytest.raises(UnknownTaskError, match="unknown task 'Protein'"):
        scheme.allowed_label_ids("Protein")
    allowed = {scheme.labels[i] for i in scheme.allowed_label_ids("Disease")}
    assert allowed == {"B-Disease", "I-Disease", "O-Disease"}


def test_lone_inside_label_starts_an_entity():
    scheme = AIOScheme()
    ids = [scheme.label2id[l] for l in ["O-ALL", "I-Gene", "I-Gene", "I-Disease", "B-Gene", "I-Gene"]]
    assert scheme.decode(ids) == [Span(1, 3, "Gene"), Span(3, 4, "Disease"), Span(4, 6, "Gene")]


def test_windows_keep_every_word():
    counts = [3, 300, 1, 1, 5, 2]
    runs = windows(counts, budget=8)
    assert runs[0] == (0, 1) and runs[1] == (1, 2)  # the 300-piece word stands alone
    covered = [i for a, b in runs for i in range(a, b)]
    assert covered == list(range(len(counts)))
    assert all(sum(min(c, 8) for c in counts[a:b]) <= 8 for a, b in runs)


def test_word_pieces_match_the_tokenizer_and_ignore_its_padding_and_truncation():
    # all-MiniLM-L6-v2's tokenizer.json pads to 128 and truncates: word_pieces goes to the Rust
    # tokenizer directly (speed) and must still give exactly the ids the tokenizer gives a word.
    from aioner.checkpoint import new_tagger
    from aioner_scheme import word_pieces

    _, tok = new_tagger(decoder="softmax")
    words = [
        "BRCA1",
        "growth",
        "hormone-deficiency",
        "Ω-3",
        "<ALL>",
        "\u200b",
        "x" * 700,
        "a1b2c3d4e5" * 9,
        "café",
        "IL-2Rα",
    ]
    expected = [tok(w, add_special_tokens=False, verbose=False)["input_ids"] or [tok.unk_token_id] for w in words]
    assert word_pieces(tok, words) == expected
    assert tok.pad_token_id not in {i for p in word_pieces(tok, words) for i in p}
    before = len(tok)
    tok.add_tokens(["zzqx"], special_tokens=True)  # a token added after the first call is seen
    assert len(tok) == before + 1 and word_pieces(tok, ["zzqx"]) == [[tok.convert_tokens_to_ids("zzqx")]]


def test_training_and_tagging_cut_the_same_windows():
    """One window budget (aioner_scheme.window_budget) for training features and tagging windows: a tokenizer
    whose model_max_length is below the model's window_length caps both (training used to ignore it)."""
    from aioner.features import encode_rows
    from aioner.testing import tiny_tagger
    from aioner_scheme import reserved_length, window_budget
    from pipeline_aioner import AIONERTagger

    model, tokenizer = tiny_tagger()
    tokenizer.model_max_length = 24  # below window_length (256) and the encoder's 512 positions
    budget = window_budget(tokenizer, model.config.window_length, model.encoder.config)
    assert budget == 24 - reserved_length(tokenizer)
    tagger = AIONERTagger(model, tokenizer)
    assert tagger.budget == budget
    words = [f"word{i}" for i in range(60)]
    text = " ".join(words)
    tagged = tagger.windows_of([text], "ALL")
    scheme = tagger.scheme
    row = {"tokens": words, "labels": [0] * len(words), "task": "ALL"}
    trained = encode_rows([row], ["O-ALL"], tokenizer, scheme, budget)
    assert len(tagged) == len(trained) > 1
    assert [w.input_ids for w in tagged] == [f.input_ids for f in trained]
    assert all(len(f.input_ids) <= 24 for f in trained)
