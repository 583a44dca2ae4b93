"""The token-classification pipeline loaded from a saved checkpoint."""

import pytest
import torch
from conftest import corpus_file, run_python


def biored_test_texts():
    from collections import OrderedDict

    docs = OrderedDict()
    for line in corpus_file("pubtator", "BioRED_Test.PubTator").read_text(encoding="utf-8").splitlines():
        for sep in ("|t|", "|a|"):
            if sep in line:
                pmid, text = line.split(sep, 1)
                docs.setdefault(pmid, []).append(text)
    return [" ".join(parts) for parts in docs.values()]


def test_minilm_pipeline_offsets_over_all_biored_test_documents(minilm_checkpoint, tmp_path):
    """Real end to end: fresh process, pipeline() from the folder, every entity is its input slice."""
    texts = biored_test_texts()
    assert len(texts) == 100
    code = f"""
import json
from transformers import pipeline
texts = json.load(open({str(tmp_path / "texts.json")!r}))
pipe = pipeline("token-classification", model={str(minilm_checkpoint)!r}, trust_remote_code=True)
assert type(pipe).__name__ == "AIONERTokenClassificationPipeline", type(pipe)
out = pipe(texts, task="ALL")
bad = [(i, e) for i, ents in enumerate(out) for e in ents if texts[i][e["start"]:e["end"]] != e["text"]]
print(json.dumps({{"docs": len(out), "entities": sum(map(len, out)), "bad": bad[:5]}}))
"""
    import json

    (tmp_path / "texts.json").write_text(json.dumps(texts))
    result = json.loads(run_python(code).strip().splitlines()[-1])
    assert result["docs"] == 100 and result["bad"] == []
    assert result["entities"] > 0


def test_long_input_gets_a_prediction_for_its_last_word(tiny_checkpoint):
    from transformers import pipeline

    pipe = pipeline("token-classification", model=str(tiny_checkpoint), trust_remote_code=True)
    # Make every word a B-Gene so that each word's prediction shows up as an entity.
    with torch.no_grad():
        pipe.model.classifier.bias.fill_(-100.0)
        pipe.model.classifier.bias[pipe.model.config.label2id["B-Gene"]] = 100.0
    text = " ".join(f"w{i}" for i in range(3000))
    ents = pipe(text, task="Gene")
    assert len(ents) == 3000  # every word, none truncated
    assert ents[-1]["text"] == "w2999" and ents[-1]["end"] == len(text)
    assert all(text[e["start"] : e["end"]] == e["text"] for e in ents)


def test_task_argument_and_lists(tiny_checkpoint):
    from transformers import pipeline

    pipe = pipeline("token-classification", model=str(tiny_checkpoint), trust_remote_code=True)
    with torch.no_grad():
        pipe.model.classifier.bias.fill_(-100.0)
        for label in ("B-Gene", "B-Disease"):
            pipe.model.classifier.bias[pipe.model.config.label2id[label]] = 100.0
    out = pipe(["BRCA1 causes cancer.", "TP53"], task="Disease")
    assert isinstance(out, list) and len(out) == 2
    assert {e["type"] for ents in out for e in ents} == {"Disease"}  # Gene is not a Disease-task label
    assert {e["type"] for e in pipe("BRCA1 causes cancer.", task="ALL")} <= {"Gene", "Disease"}
    # The pipeline's classes come from the checkpoint's copy of the code: match by base class.
    with pytest.raises(ValueError, match="unknown task 'Protein'"):
        pipe("BRCA1", task="Protein")
    assert pipe("") == [] and pipe("   \n ") == []


def test_unicode_offsets_are_exact(tiny_checkpoint):
    from transformers import pipeline

    pipe = pipeline("token-classification", model=str(tiny_checkpoint), trust_remote_code=True)
    with torch.no_grad():
        pipe.model.classifier.bias.fill_(-100.0)
        pipe.model.classifier.bias[pipe.model.config.label2id["B-Chemical"]] = 100.0
    text = "TNF-α and IL‐1β\u00a0(β-catenin) 😀 naïve ﬁbroblasts\u200b\tCa²⁺ e\u0301"
    ents = pipe(text)
    assert ents and all(text[e["start"] : e["end"]] == e["text"] for e in ents)
    assert "😀" in {e["text"] for e in ents}


def test_options_of_the_stock_pipeline_are_refused_not_dropped(tiny_checkpoint):
    from transformers import pipeline

    pipe = pipeline("token-classification", model=str(tiny_checkpoint), trust_remote_code=True)
    with pytest.raises(TypeError, match=r"\['aggregation_strategy'\].*task="):
        pipe("BRCA1 mutations.", aggregation_strategy="simple")
    with pytest.raises(TypeError, match="tokens_per_batch"):
        pipe("BRCA1 mutations.", batch_size=8)
    with pytest.raises(TypeError, match=r"\['stride'\]"):
        pipeline("token-classification", model=str(tiny_checkpoint), trust_remote_code=True, stride=16)
    assert isinstance(pipe("BRCA1 mutations.", task="ALL"), list)
