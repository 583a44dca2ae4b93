"""Domain-adaptive pre-training (aioner/mlm.py, pretrain_mlm.py) on tiny data: a 2-layer random BERT."""

import json

import pytest
from conftest import corpus_file


@pytest.fixture(scope="module")
def biored_files():
    corpus_file("pubtator", "BioRED_TrainDev.PubTator")
    return corpus_file("pubtator", "BioRED_Test.PubTator")


def _test_documents(path):
    from dataset_scripts.pubtator import read_pubtator

    return list(read_pubtator(path, strict=False))


def train_tiny_mlm(encoder: str, out, **options) -> dict:
    """``train_mlm`` from ``encoder`` on BioRED's train text (its test documents left out), seed 0; ``options``:
    the rest of ``MLMArgs`` (sample, steps, schedule)."""
    from aioner.mlm import MLMArgs, train_mlm

    shared = dict(corpora=["BioRED"], exclude_tests_of=["BioRED"], seq_length=64, batch_size=8, learning_rate=2e-3)
    return train_mlm(MLMArgs(output_dir=str(out), encoder=encoder, **shared, **options, seed=0, command="pytest"))


def test_text_is_train_split_only(biored_files):
    """No test document (by id, nor any of its sentences) and no dev hold-out document is in the text."""
    from aioner.mlm_data import collect_documents, split_sentences
    from dataset_scripts.aio import SplitReport, read_documents
    from dataset_scripts.corpora import get_corpus

    train, heldout, report = collect_documents(["BioRED"], exclude_tests_of=["BioRED"])
    test = _test_documents(biored_files)
    dev_ids = {d.id for d in read_documents(get_corpus("BioRED"), "dev", SplitReport("BioRED", "dev"))[0]}
    used_ids = {doc_id for _, doc_id, _ in train + heldout}
    assert used_ids and heldout
    assert not used_ids & {d.id for d in test}
    assert not used_ids & dev_ids
    test_sentences = {s for d in test for p in d.passages for s in split_sentences(p.text)}
    assert not test_sentences & {s for _, _, sents in train + heldout for s in sents}
    entry = report.corpora[0]
    assert entry.file == "pubtator/BioRED_TrainDev.PubTator" and entry.dev_held_out == len(dev_ids)
    assert (
        entry.documents_used + entry.heldout_documents + entry.excluded_test_ids + entry.duplicates
        == entry.documents_in_split
    )


def test_pack_keeps_every_subword_in_order(tiny_encoder):
    from transformers import AutoTokenizer

    from aioner.mlm_data import pack_documents as pack

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    docs = [
        ("X", "1", ["Hepatocyte nuclear factor-6 regulates insulin secretion.", "It is a transcription factor."]),
        ("X", "2", ["BRCA1 mutations cause breast cancer " * 12 + "."]),  # longer than a sequence
        ("X", "3", ["Short one."]),
    ]
    packed = pack(docs, tok, seq_length=24, with_offsets=True)
    expected = [i for _, _, sents in docs for s in sents for i in tok(s, add_special_tokens=False)["input_ids"]]
    body = [int(i) for ids, sp in zip(packed.input_ids, packed.special) for i, s in zip(ids, sp) if not s]
    assert body == expected and packed.tokens == len(expected)
    for ids, sp, offs in zip(packed.input_ids, packed.special, packed.offsets):
        assert len(ids) <= 24 and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert sp[0] == sp[-1] == 1 and len(offs) == len(ids)


def test_whole_word_masking_masks_every_subword(tiny_encoder):
    from transformers import AutoTokenizer

    from aioner.mlm_data import MaskingCollator
    from aioner.mlm_data import pack_documents as pack

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    docs = [
        ("X", str(i), ["Hepatocyte nuclear factor-6 polymorphisms and hyperinsulinaemia in Langerhans cells."])
        for i in range(8)
    ]
    packed = pack(docs, tok, seq_length=64, with_offsets=True)
    batch = MaskingCollator(tok, packed, mlm_probability=0.5, whole_word_mask=True, seed=0)(
        list(range(len(packed.input_ids)))
    )
    masked = batch["labels"] != -100
    assert masked.any()
    assert (batch["input_ids"][masked] == tok.mask_token_id).all()  # whole-word mode: always the mask token
    for row, (ids, sp, offs) in enumerate(zip(packed.input_ids, packed.special, packed.offsets)):
        word, words = -1, []
        for k in range(len(ids)):  # a word: sub-words whose offsets touch
            if sp[k]:
                words.append(-1)
                continue
            if k == 0 or sp[k - 1] or offs[k][0] != offs[k - 1][1]:
                word += 1
            words.append(word)
        for w in set(words) - {-1}:
            flags = {bool(masked[row, k]) for k in range(len(ids)) if words[k] == w}
            assert len(flags) == 1, f"word {w} of row {row} is partly masked"


def test_mlm_loss_falls_and_encoder_plugs_in(tiny_encoder, biored_files, tmp_path):
    import torch
    from transformers import AutoConfig, AutoModel

    from aioner.checkpoint import new_tagger
    from aioner.features import collate, encode_rows
    from aioner_scheme import window_budget
    from modeling_aioner import AIONERConfig, AIONERForTokenClassification

    out = tmp_path / "adapted"
    record = train_tiny_mlm(
        tiny_encoder, out, sample=40, max_steps=30, warmup_ratio=0.1, log_steps=5, whole_word_mask=True
    )
    # The loss falls: on the held-out documents (fixed masks) and over the training run.
    assert record["steps"] == 30
    assert record["heldout_loss_after"] < record["heldout_loss_before"] - 0.3, record["heldout"]
    assert record["history"][-1]["loss"] < record["history"][0]["loss"] - 0.3, record["history"]
    # The tiny encoder had no MLM head: one was made, its decoder tied to the embeddings.
    assert record["initialised_weights"] and record["decoder_tied_to_embeddings"]

    # No test document was trained on or held out.
    test_ids = {d.id for d in _test_documents(biored_files)}
    rows = (out / "pretraining_documents.tsv").read_text().splitlines()[1:]
    assert len(rows) == record["data"]["documents"] + record["data"]["heldout_documents"] <= 40
    assert not {r.split("\t")[1] for r in rows} & test_ids

    # The card says what text it saw.
    card = (out / "README.md").read_text()
    assert "pubtator/BioRED_TrainDev.PubTator" in card and "train split" in card
    assert f"{record['data']['documents']} documents trained on" in card
    assert json.loads((out / "mlm_training.json").read_text())["steps"] == 30

    # It loads with AutoModel and plugs into AIONERConfig / new_tagger.
    encoder = AutoModel.from_pretrained(out)
    assert encoder.config.hidden_size == 32 and encoder.config.num_hidden_layers == 2
    config = AIONERConfig(encoder_config=AutoConfig.from_pretrained(out).to_dict())
    assert AIONERForTokenClassification(config).encoder.config.hidden_size == 32
    model, tokenizer = new_tagger(str(out))
    adapted = dict(encoder.named_parameters())
    assert torch.equal(
        model.encoder.encoder.layer[0].attention.self.query.weight,
        adapted["encoder.layer.0.attention.self.query.weight"],
    )
    scheme = model.config.scheme
    row = {"tokens": ["BRCA1", "mutations", "cause", "breast", "cancer", "."], "labels": [0] * 6, "task": "ALL"}
    feats = encode_rows(
        [row],
        [scheme.labels[0]],
        tokenizer,
        scheme,
        window_budget(tokenizer, model.config.window_length, model.encoder.config),
    )
    loss = model(**collate(feats, tokenizer.pad_token_id)).loss
    assert torch.isfinite(loss)


def test_head_warmup_leaves_the_pretrained_encoder_untouched(tiny_encoder, tmp_path):
    """During --head_warmup_steps only the new head learns: every pre-trained weight is bit-identical."""
    import torch
    from transformers import AutoModel

    out = tmp_path / "warm"
    record = train_tiny_mlm(
        tiny_encoder, out, sample=20, max_steps=8, head_warmup_steps=8, warmup_ratio=0.0, log_steps=1
    )
    assert record["heldout_loss_after"] < record["heldout_loss_before"], "the head did not learn"
    before, after = AutoModel.from_pretrained(tiny_encoder), AutoModel.from_pretrained(out)
    compared = 0
    for (name, a), (_, b) in zip(before.named_parameters(), after.named_parameters()):
        if not name.startswith("pooler."):  # an MLM model has no pooler: AutoModel makes a new one
            assert torch.equal(a, b), name
            compared += 1
    assert compared > 20
    assert "trained only the new head" in (out / "README.md").read_text()


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_masked_only_loss_equals_the_models_own(arch):
    """The head on masked positions only gives the *ForMaskedLM loss, for BERT and MPNet."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, MPNetConfig, MPNetForMaskedLM

    from aioner.mlm_model import MaskedOnlyLoss

    model_cls, config_cls = {"bert": (BertForMaskedLM, BertConfig), "mpnet": (MPNetForMaskedLM, MPNetConfig)}[arch]
    torch.manual_seed(0)
    model = model_cls(
        config_cls(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    ).eval()
    ids = torch.randint(5, 100, (2, 12))
    attention = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    labels[0, 7] = 9
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        assert torch.allclose(MaskedOnlyLoss(model)(ids, attention, labels), expected, atol=1e-5)


def test_benchmark_dry_run_and_default_rule(capsys):
    """python -m benchmarks.encoders: the commands it would run, and how it picks the default."""
    from benchmarks import encoders as bench

    assert bench.main(["--dry_run", "--budget_minutes", "1", "--with_aio"]) == 0
    out = capsys.readouterr().out
    assert "pretrain_mlm.py --encoder embedded:all-MiniLM-L6-v2" in out
    assert out.count("train.py --recipe single --corpora BioRED") == 3 and out.count("train.py --recipe aioner") == 3
    assert "--encoder runs/encoders/mlm-minilm --learning_rate 0.0001" in out

    b = bench.Bench(bench.parse_args(["--budget_minutes", "1"]))

    def entry(f1, speed):
        return {"baseline": {"overall_f1": f1, "tagging_tokens_per_s": speed}}

    # Twice as slow must win by the margin (1 F1 point); as fast wins on any F1 gain.
    assert b.choose_default({"small": entry(80.0, 3000), "big": entry(80.9, 600)}, "baseline")[0] == "small"
    assert b.choose_default({"small": entry(80.0, 3000), "big": entry(81.5, 600)}, "baseline")[0] == "big"
    assert b.choose_default({"small": entry(80.0, 3000), "adapted": entry(80.3, 2900)}, "baseline")[0] == "adapted"
