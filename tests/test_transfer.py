"""The transfer-learning framework's parts: ensembles, gazetteer post-processing, the BiLSTM head."""

import json
import subprocess

import pytest
import torch
from conftest import REPO, run_python, tiny_tagger

from aioner.testing import TAG

TEXTS = [
    "BRCA1 mutations cause breast cancer in women.",
    "Aspirin (acetylsalicylic acid) reduced IL-6 levels in mice treated with LPS; p53 was unchanged.",
]


def entities_of(model, tokenizer, task="ALL"):
    from pipeline_aioner import AIONERTagger

    return AIONERTagger(model, tokenizer).tag(TEXTS, task)


def tag_cli(src, models: list, out, *options):
    """``aioner-tag SRC --model MODELS --output_dir OUT OPTIONS`` in a subprocess, its output captured."""
    args = [src, "--model", *models, "--output_dir", out, *options]
    return subprocess.run(TAG + [str(a) for a in args], cwd=REPO, capture_output=True, text=True)


# ----- ensembles -----
@pytest.mark.parametrize("decoder", ["crf", "softmax"])
def test_ensemble_of_a_model_with_itself_equals_the_model(decoder):
    from aioner.ensemble import AIONEREnsemble

    model, tokenizer = tiny_tagger(decoder, seed=3)
    with torch.no_grad():  # a head that predicts some entities, so the comparison has something to compare
        model.classifier.bias.normal_(0, 3, generator=torch.Generator().manual_seed(1))
    alone = entities_of(model, tokenizer)
    together = entities_of(AIONEREnsemble([model, model]).eval(), tokenizer)
    assert sum(map(len, alone)) > 0
    assert [[(e["start"], e["end"], e["type"]) for e in d] for d in together] == [
        [(e["start"], e["end"], e["type"]) for e in d] for d in alone
    ]
    for a, b in zip(alone, together):
        assert [e["score"] for e in a] == pytest.approx([e["score"] for e in b], abs=1e-5)


def test_ensemble_averages_emissions_and_crf_scores():
    from aioner.ensemble import AIONEREnsemble

    (a, _), (b, _) = tiny_tagger(seed=1), tiny_tagger(seed=2)
    with torch.no_grad():
        a.crf.transitions.normal_(), b.crf.transitions.normal_()
    ens = AIONEREnsemble([a, b]).eval()
    ids = torch.randint(1000, 5000, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean = (a.emissions(ids)[0] + b.emissions(ids)[0]) / 2
        torch.testing.assert_close(ens.emissions(ids)[0], mean)
    torch.testing.assert_close(ens.crf.transitions, (a.crf.transitions + b.crf.transitions) / 2)


def test_ensemble_refuses_members_that_do_not_fit(tmp_path):
    from aioner.checkpoint import save_checkpoint
    from aioner.ensemble import AIONEREnsemble, load_ensemble

    crf, tok = tiny_tagger("crf")
    soft, _ = tiny_tagger("softmax")
    gene_only, gene_tok = tiny_tagger(tasks={"Gene": ["Gene"]})
    with pytest.raises(ValueError, match="share the decoder"):
        AIONEREnsemble([crf, soft])
    with pytest.raises(ValueError, match="share a label set"):
        AIONEREnsemble([crf, gene_only])
    save_checkpoint(crf, tok, tmp_path / "a")
    save_checkpoint(gene_only, gene_tok, tmp_path / "b")
    with pytest.raises(ValueError, match=r"b: its tokenizer's vocabulary differs"):
        load_ensemble([str(tmp_path / "a"), str(tmp_path / "b")])


def with_entities(model, seed=1, every_word=None):
    """``model`` with a head that predicts some entities (random biases), or calls every word ``every_word``."""
    with torch.no_grad():
        if every_word is None:
            model.classifier.bias.normal_(0, 3, generator=torch.Generator().manual_seed(seed))
        else:
            model.classifier.bias.fill_(-100.0)
            model.classifier.bias[model.config.label2id[every_word]] = 100.0
    return model


def spans(results):
    return [[(e["start"], e["end"], e["type"]) for e in doc] for doc in results]


@pytest.fixture(scope="module")
def two_tokenizers():
    """Two tiny members that cut words differently: the embedded WordPiece and single characters."""
    from aioner.testing import char_tokenizer

    a, tok_a = tiny_tagger(seed=1)
    b, tok_b = tiny_tagger(seed=2, tokenizer=char_tokenizer())
    assert tok_a.get_vocab() != tok_b.get_vocab()
    return (with_entities(a, 1), tok_a), (with_entities(b, 2), tok_b)


@pytest.mark.parametrize("decoder", ["crf", "softmax"])
def test_ensemble_tagger_of_a_model_with_itself_equals_the_model(decoder):
    from aioner.ensemble import EnsembleTagger
    from pipeline_aioner import AIONERTagger

    model, tokenizer = tiny_tagger(decoder, seed=3)
    with_entities(model)
    alone = AIONERTagger(model, tokenizer).tag(TEXTS)
    together = EnsembleTagger([(model, tokenizer), (model, tokenizer)]).tag(TEXTS)
    assert sum(map(len, alone)) > 0
    assert spans(together) == spans(alone)
    for a, b in zip(alone, together):
        assert [e["score"] for e in a] == pytest.approx([e["score"] for e in b], abs=1e-6)


def test_ensemble_across_tokenizers_averages_each_members_word_scores(two_tokenizers):
    """Each member reads the words in its own sub-words, exactly as it would alone; their scores at
    each word's first sub-word are averaged (weights normalized), and the offsets stay exact."""
    from aioner.ensemble import EnsembleTagger
    from pipeline_aioner import AIONERTagger

    (a, tok_a), (b, tok_b) = two_tokenizers
    ens = EnsembleTagger(two_tokenizers, weights=[3, 1])
    wins = ens.windows_of(TEXTS, "ALL")
    alone = [AIONERTagger(a, tok_a).windows_of(TEXTS, "ALL"), AIONERTagger(b, tok_b).windows_of(TEXTS, "ALL")]
    for k, own in enumerate(alone):  # short sentences: the same windows as the member's own
        assert [w.members[k].input_ids for w in wins] == [w.input_ids for w in own]
        assert [w.words for w in wins] == [w.words for w in own]
    assert len(wins[0].members[1].input_ids) > len(wins[0].members[0].input_ids)  # characters: more sub-words
    with torch.no_grad():
        combined, mask = ens.word_emissions(wins)
        ea, ma = ens.taggers[0].word_emissions([w.members[0] for w in wins])
        eb, mb = ens.taggers[1].word_emissions([w.members[1] for w in wins])
    assert torch.equal(mask, ma) and torch.equal(mask, mb)
    torch.testing.assert_close(combined, 0.75 * ea + 0.25 * eb)
    torch.testing.assert_close(ens.model.crf.transitions, 0.75 * a.crf.transitions + 0.25 * b.crf.transitions)
    tagged = ens.tag(TEXTS)
    assert sum(map(len, tagged)) > 0
    for text, doc in zip(TEXTS, tagged):
        assert all(text[e["start"] : e["end"]] == e["text"] for e in doc)


def test_ensemble_weights_pick_a_member(two_tokenizers):
    """Weights (1, 0) give member 0's output exactly, whatever the other member's tokenizer."""
    from aioner.ensemble import EnsembleTagger
    from pipeline_aioner import AIONERTagger

    (a, tok_a), _ = two_tokenizers
    alone = AIONERTagger(a, tok_a).tag(TEXTS)
    picked = EnsembleTagger(two_tokenizers, weights=[1, 0]).tag(TEXTS)
    assert sum(map(len, alone)) > 0 and spans(picked) == spans(alone)
    with pytest.raises(ValueError, match="one non-negative weight per member"):
        EnsembleTagger(two_tokenizers, weights=[1])


@pytest.mark.parametrize("context", ["sentence", "pack", "margin"])
def test_ensemble_across_tokenizers_labels_every_word_once(context):
    """Windows planned at the word level fit both members (one cuts words into characters, so long
    sentences split by its counts): every word of every sentence comes out once, at its offsets."""
    from aioner.ensemble import EnsembleTagger
    from aioner.testing import char_tokenizer, long_text
    from aioner_text import segment

    members = []
    for seed, tok in ((1, None), (2, char_tokenizer())):
        model, tokenizer = tiny_tagger(seed=seed, tokenizer=tok)
        model.config.window_length, model.config.context, model.config.context_margin = 64, context, 8
        members.append((with_entities(model, every_word="B-Gene"), tokenizer))
    texts = [long_text(400), *TEXTS]
    ens = EnsembleTagger(members)
    assert ens.budget < 64
    for text, doc in zip(texts, ens.tag(texts)):
        words = [span for sentence in segment(text) for span in sentence]
        assert [(e["start"], e["end"]) for e in doc] == words
    assert len(ens.windows_of(texts[:1], "ALL")) > 1  # the long text did not fit one window


def test_ensemble_pipeline_and_cli(tmp_path):
    """Members with different tokenizers through ``ensemble_pipeline`` and ``aioner-tag --model A B``."""
    from aioner.checkpoint import save_checkpoint
    from aioner.ensemble import ensemble_pipeline
    from aioner.testing import char_tokenizer

    for seed, tok in ((1, None), (2, char_tokenizer())):
        model, tok = tiny_tagger(seed=seed, tokenizer=tok)
        save_checkpoint(with_entities(model, seed), tok, tmp_path / f"m{seed}")
    members = [str(tmp_path / "m1"), str(tmp_path / "m2")]
    pipe = ensemble_pipeline(members, weights=[2, 1])
    out = pipe(TEXTS[0])
    assert all(TEXTS[0][e["start"] : e["end"]] == e["text"] for e in out)
    (tmp_path / "in.txt").write_text(TEXTS[1], encoding="utf-8")
    res = tag_cli(tmp_path / "in.txt", members, tmp_path / "out", "--ensemble_weights", 2, 1)
    assert res.returncode == 0, res.stderr[-3000:]
    rec = json.loads((tmp_path / "out" / "in.jsonl").read_text())
    expected = pipe(TEXTS[1])
    assert expected and [(e["start"], e["end"], e["type"]) for e in rec["entities"]] == [
        (e["start"], e["end"], e["type"]) for e in expected
    ]


# ----- gazetteers -----
def test_gazetteer_matches_at_exact_offsets_in_unicode_text():
    from aioner.gazetteer import Entry, Gazetteer

    g = Gazetteer(
        [
            Entry("IL-2", "Gene"),
            Entry("TNF-α", "Gene"),
            Entry("growth hormone", "Gene"),
            Entry("CO", "Chemical"),
            Entry("İstanbul virus", "Species"),
        ]
    )
    text = "😀 TNF-Α and IL-2-induced Growth\u00a0hormone? No: IL-2R, co. Yes: CO, İstanbul virus."
    found = [(text[s:e], en.type) for s, e, en in g.matches(text)]
    # any case for long terms, exact case for short ones; word boundaries; NBSP is not a space
    assert found == [("TNF-Α", "Gene"), ("IL-2", "Gene"), ("CO", "Chemical"), ("İstanbul virus", "Species")]
    g2 = Gazetteer([Entry("growth\u00a0hormone", "Gene")])
    assert [text[s:e] for s, e, _ in g2.matches(text)] == ["Growth\u00a0hormone"]


def test_gazetteer_longest_leftmost_and_modes():
    from aioner.gazetteer import Entry, Gazetteer

    g = Gazetteer(
        [Entry("growth hormone", "Gene"), Entry("growth hormone deficiency", "Disease"), Entry("aspirin", "Chemical")]
    )
    text = "Growth hormone deficiency and aspirin; insulin too."
    assert [(text[s:e], en.type) for s, e, en in g.matches(text)] == [
        ("Growth hormone deficiency", "Disease"),
        ("aspirin", "Chemical"),
    ]
    pred = [
        {"start": 39, "end": 46, "type": "Chemical", "score": 0.9, "text": "insulin"},
        {"start": 30, "end": 37, "type": "Chemical", "score": 0.95, "text": "aspirin"},
    ]
    recall = g.apply(text, pred, "recall")
    assert [(e["text"], e.get("source")) for e in recall] == [
        ("Growth hormone deficiency", "gazetteer"),
        ("aspirin", None),
        ("insulin", None),
    ]
    precision = g.apply(text, pred, "precision")
    assert [e["text"] for e in precision] == ["aspirin"]  # insulin: a Chemical without dictionary support
    assert [e["text"] for e in g.apply(text, pred, "precision", min_score=0.8)] == ["aspirin", "insulin"]
    species = [{"start": 39, "end": 46, "type": "Species", "score": 0.1, "text": "insulin"}]
    assert g.apply(text, species, "precision") == species  # a type the dictionary does not cover is kept


def test_gazetteer_tsv_round_trip_and_clear_errors(tmp_path):
    from aioner.gazetteer import Entry, Gazetteer, GazetteerError

    g = Gazetteer([Entry("p53", "Gene", "NCBIGene:7157"), Entry("mice", "Species")])
    g.to_tsv(tmp_path / "g.tsv")
    again = Gazetteer.from_tsv(tmp_path / "g.tsv")
    assert again.entries == g.entries
    (tmp_path / "bad.tsv").write_text("# comment\np53\tGene\nonly-a-term\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"bad.tsv, line 3"):
        Gazetteer.from_tsv(tmp_path / "bad.tsv")
    with pytest.raises(GazetteerError, match="missing.tsv"):
        Gazetteer.from_tsv(tmp_path / "missing.tsv")


def test_gazetteer_from_annotations_drops_ambiguous_terms():
    from aioner.gazetteer import Gazetteer

    texts = ["Lead poisoning from lead.", "They lead the team; lead was measured.", "p53 and p53."]
    ents = [(0, 20, 24, "Chemical"), (1, 20, 24, "Chemical"), (2, 0, 3, "Gene"), (2, 8, 11, "Gene")]
    g = Gazetteer.from_annotations(texts, ents, min_precision=0.5)
    # "lead" matches 4 times (case-insensitive), 2 annotated: kept at 0.5, dropped at 0.6
    assert {e.term for e in g.entries} == {"lead", "p53"}
    assert {e.term for e in Gazetteer.from_annotations(texts, ents, min_precision=0.6).entries} == {"p53"}


def test_tagging_cli_applies_a_gazetteer(tmp_path):
    from aioner.checkpoint import save_checkpoint

    model, tok = tiny_tagger()
    with torch.no_grad():  # a model that finds nothing: what comes out is the gazetteer's
        model.classifier.bias.fill_(-100.0)
        for label in model.config.label2id:
            if label.startswith("O-"):
                model.classifier.bias[model.config.label2id[label]] = 100.0
    ckpt = save_checkpoint(model, tok, tmp_path / "silent")
    (tmp_path / "g.tsv").write_text("acetylsalicylic acid\tChemical\nmice\tSpecies\n", encoding="utf-8")
    (tmp_path / "in.txt").write_text(TEXTS[1], encoding="utf-8")
    res = tag_cli(
        tmp_path / "in.txt", [ckpt], tmp_path / "out", "--gazetteer", tmp_path / "g.tsv", "--gazetteer_mode", "recall"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    ents = json.loads((tmp_path / "out" / "in.jsonl").read_text())["entities"]
    assert [(TEXTS[1][e["start"] : e["end"]], e["type"]) for e in ents] == [
        ("acetylsalicylic acid", "Chemical"),
        ("mice", "Species"),
    ]
    bad = tag_cli(tmp_path / "in.txt", [ckpt], tmp_path / "out2", "--gazetteer", tmp_path / "nope.tsv")
    assert bad.returncode == 2 and "nope.tsv" in bad.stderr


# ----- the BiLSTM head -----
def bilstm_tagger():
    from aioner.checkpoint import resolve_encoder, tokenizer_with_tags
    from aioner.testing import tiny_bert_config
    from aioner_scheme import AIOScheme
    from modeling_aioner import AIONERConfig, AIONERForTokenClassification

    torch.manual_seed(0)
    tokenizer = tokenizer_with_tags(resolve_encoder(None), AIOScheme())
    encoder = tiny_bert_config(vocab_size=len(tokenizer))
    config = AIONERConfig(encoder_config=encoder.to_dict(), head="bilstm", lstm_size=16)
    return AIONERForTokenClassification(config).eval(), tokenizer


def test_bilstm_head_round_trips_through_trust_remote_code(tmp_path):
    from aioner.checkpoint import save_checkpoint

    model, tokenizer = bilstm_tagger()
    assert model.lstm is not None and model.fc.in_features == 32
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    ids = torch.randint(1000, 5000, (2, 11), generator=torch.Generator().manual_seed(0))
    torch.save(ids, tmp_path / "ids.pt")
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    run_python(f"""
import torch
from transformers import AutoModelForTokenClassification
m = AutoModelForTokenClassification.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True).eval()
assert m.config.head == 'bilstm' and m.lstm.hidden_size == 16
with torch.no_grad():
    torch.save(m(input_ids=torch.load({str(tmp_path / "ids.pt")!r})).logits, {str(tmp_path / "out.pt")!r})
""")
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected, rtol=0, atol=0)


def test_bilstm_ignores_padding():
    model, _ = bilstm_tagger()
    ids = torch.randint(1000, 5000, (1, 7), generator=torch.Generator().manual_seed(0))
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 5)], 1).long()
    with torch.no_grad():
        alone = model.emissions(ids, torch.ones_like(ids))[0]
        batched = model.emissions(padded, mask)[0][:, :7]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_bilstm_head_trains(tmp_path):
    """A few optimizer steps with the BiLSTM head lower the loss on a fixed batch."""
    model, _ = bilstm_tagger()
    model.train()
    ids = torch.randint(1000, 5000, (4, 10), generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, model.config.num_labels, (4, 10), generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
