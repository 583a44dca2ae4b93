"""The multi-task (MTL) baseline: one output layer per dataset over a shared encoder, no task tags."""

import json

import pytest
import torch
from conftest import run_python
from test_training import train_few_steps

TASKS = [["NCBI-Disease", ["Disease"]], ["BC5CDR-Chemical", ["Chemical"]]]


def tiny_mtl(decoder="crf", seed=0):
    from transformers import AutoTokenizer

    from aioner.checkpoint import resolve_encoder
    from aioner.testing import every_task_trained, tiny_bert_config
    from modeling_aioner import AIONERConfig, AIONERForTokenClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(None))
    encoder = tiny_bert_config(vocab_size=len(tokenizer), max_position_embeddings=512)
    config = AIONERConfig(
        encoder_config=encoder.to_dict(), tasks=TASKS, decoder=decoder, output_layers="per_task", task_tags=False
    )
    config.trained_tasks = every_task_trained(config.scheme)
    return AIONERForTokenClassification(config), tokenizer


def batch_of(model, tokenizer, task_ids):
    """Rows of random words, each labelled within its own task's labels."""
    from aioner.features import collate, encode_rows

    scheme = model.config.scheme
    rows = []
    for i, t in enumerate(task_ids):
        task = list(scheme.tasks)[t]
        etype = scheme.tasks[task][0]
        labels = [f"O-{task}", f"B-{etype}", f"I-{etype}", f"O-{task}"]
        rows.append(
            {
                "task": task,
                "tokens": ["aspirin", "renal", "failure", f"w{i}"],
                "labels": [scheme.label2id[n] for n in labels],
            }
        )
    feats = encode_rows(rows, scheme.labels, tokenizer, scheme, budget=64, tags=False)
    return collate(feats, tokenizer.pad_token_id)


def head_grads(model):
    return [[p.grad.clone() if p.grad is not None else None for p in head.parameters()] for head in model.task_heads]


@pytest.mark.parametrize("decoder", ["crf", "softmax"])
def test_each_head_learns_only_from_its_own_datasets_rows(decoder):
    model, tokenizer = tiny_mtl(decoder)
    model.train()
    model.zero_grad()
    model(**batch_of(model, tokenizer, [0, 0, 0])).loss.backward()
    first, second = head_grads(model)
    assert all(g is not None and g.abs().sum() > 0 for g in first if g is not None)
    assert all(g is None or g.abs().sum() == 0 for g in second)  # head 1 saw none of its rows

    # In a mixed batch, head 0's gradient does not depend on the rows of task 1 (their labels changed).
    torch.manual_seed(1)
    model.eval()  # no dropout: the two passes must be comparable
    mixed = batch_of(model, tokenizer, [0, 1, 0, 1])
    grads = []
    for flip in (False, True):
        batch = {k: v.clone() for k, v in mixed.items()}
        if flip:
            scheme = model.config.scheme
            rows = batch["task_ids"] == 1
            lab = batch["labels"][rows]
            lab[lab == scheme.label2id["B-Chemical"]] = scheme.label2id["O-BC5CDR-Chemical"]
            batch["labels"][rows] = lab
        model.zero_grad()
        model(**batch).loss.backward()
        grads.append(head_grads(model))
    for a, b in zip(grads[0][0], grads[1][0]):
        assert torch.allclose(a, b, atol=1e-7)  # head 0: same gradient (the loss is a sum over rows / rows)
    assert any(not torch.allclose(a, b) for a, b in zip(grads[0][1], grads[1][1]))  # head 1: changed


def test_windows_carry_no_task_tags_and_emissions_stay_inside_the_task():
    from modeling_aioner import _FORBIDDEN

    model, tokenizer = tiny_mtl()
    batch = batch_of(model, tokenizer, [0, 1])
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"]):
        ids = ids[mask.bool()].tolist()
        # [CLS] then the words' sub-words at once: no <task> tag between them.
        assert (
            ids[0] == cls
            and ids[-1] == sep
            and ids[1:3] == tokenizer("aspirin", add_special_tokens=False)["input_ids"][:2]
        )
    logits, _ = model.eval().emissions(batch["input_ids"], batch["attention_mask"], task_ids=batch["task_ids"])
    scheme = model.config.scheme
    for row, task in enumerate(scheme.tasks):
        allowed = set(scheme.allowed_label_ids(task))
        for j in range(scheme.labels.__len__()):
            assert (logits[row, :, j] == _FORBIDDEN).all() == (j not in allowed)
    with pytest.raises(ValueError, match="task_ids"):
        model.emissions(batch["input_ids"], batch["attention_mask"])


def test_checkpoint_round_trip_gives_identical_logits_in_a_fresh_process(tmp_path):
    from aioner.checkpoint import save_checkpoint

    model, tokenizer = tiny_mtl()
    model.eval()
    batch = batch_of(model, tokenizer, [1, 0, 1])
    with torch.no_grad():
        logits, _ = model.emissions(batch["input_ids"], batch["attention_mask"], task_ids=batch["task_ids"])
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    torch.save({**batch, "logits": logits}, tmp_path / "batch.pt")
    out = run_python(f"""
import torch
from transformers import AutoModelForTokenClassification
m = AutoModelForTokenClassification.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True).eval()
b = torch.load({str(tmp_path / "batch.pt")!r})
with torch.no_grad():
    logits, _ = m.emissions(b["input_ids"], b["attention_mask"], task_ids=b["task_ids"])
print(type(m).__module__.startswith("transformers_modules"), m.config.output_layers, m.config.task_tags,
      torch.equal(logits, b["logits"]))
""")
    assert out.split()[-4:] == ["True", "per_task", "False", "True"]


def test_mtl_recipe_trains_on_two_corpora_saves_loads_and_tags(tiny_encoder, tmp_path):
    out = tmp_path / "mtl"
    train_few_steps("mtl", ["NCBI-Disease", "BC5CDR-Chemical"], out, tiny_encoder, max_steps=3)
    config = json.loads((out / "config.json").read_text())
    assert config["output_layers"] == "per_task" and config["task_tags"] is False
    assert config["tasks"] == TASKS
    assert set(config["label2id"]) == {
        "B-Disease",
        "I-Disease",
        "O-NCBI-Disease",
        "B-Chemical",
        "I-Chemical",
        "O-BC5CDR-Chemical",
    }
    vocab = json.loads((out / "tokenizer.json").read_text())["added_tokens"]
    assert not [t for t in vocab if t["content"].startswith("<NCBI")]  # no task tags were added
    result = run_python(f"""
from transformers import pipeline
p = pipeline("token-classification", model={str(out)!r}, trust_remote_code=True)
text = "Aspirin-induced renal failure in patients with gout."
ents = p(text, task="NCBI-Disease") + p(text, task="BC5CDR-Chemical")
print(all(text[e["start"]:e["end"]] == e["text"] for e in ents), {{e["type"] for e in p(text, task="NCBI-Disease")}} <= {{"Disease"}})
try:
    p(text, task="ALL")
except ValueError as err:
    print("refused:", err)
""")
    assert "True True" in result
    assert "refused:" in result and "NCBI-Disease" in result


def test_evaluate_corpus_tags_with_the_dataset_task_of_an_mtl_model():
    from aioner.evaluation import evaluate_corpus
    from pipeline_aioner import AIONERTagger

    model, tokenizer = tiny_mtl()

    class Spy(AIONERTagger):
        def tag(self, texts, task="ALL", passages=None, only=None):
            self.asked = task
            return [[] for _ in texts]

    spy = Spy(model.eval(), tokenizer)
    assert evaluate_corpus(spy, "NCBI-Disease")["task"] == "NCBI-Disease" == spy.asked
