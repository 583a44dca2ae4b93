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


def _words(text):
    from aioner_text import segment

    return [w for sentence in segment(text) for w in sentence]


@pytest.mark.parametrize(
    "text, predicted, tidied",
    [
        ("stem cell factor (SCF), a", "stem cell factor (", "stem cell factor"),  # a bare opener ends nothing
        ("TNF-alpha -857C/T SNP", "TNF-alpha -", "TNF-alpha"),
        ("effect of MK-801 on", "-801", "MK-801"),  # a start glued inside a word takes the whole word
        ("prothrombin 20210G>A, and", ">A", "20210G>A"),
        ("the A(1)-adenosine receptor", ")-adenosine receptor", "A(1)-adenosine receptor"),
        ("levels of (SCF in", "(SCF", "SCF"),  # unmatched bracket
        ("levels of SCF) in", "SCF)", "SCF"),
        ("levels of Ca(2+) in", "Ca(2+)", "Ca(2+)"),  # matched brackets stay
        ("the TNF-alpha -857C/T SNP", "-857C/T", "-857C/T"),  # "-" after a space may start a variant
        ("binds CaM . It", "CaM .", "CaM"),  # a period apart from the word
        ("Scardovia wiggsiae sp. nov., isolated", "Scardovia wiggsiae sp. nov.", "Scardovia wiggsiae sp. nov."),
        ("a / b", "/", "/"),  # one word is left as it is
    ],
)
def test_tidy_span_mends_edges_cut_inside_a_term(text, predicted, tidied):
    from pipeline_aioner import tidy_span

    words = _words(text)
    start = text.index(predicted)
    first = next(i for i, (s, _) in enumerate(words) if s == start)
    end = next(i for i, (_, e) in enumerate(words) if e == start + len(predicted)) + 1
    f, e = tidy_span(text, words, first, end, set(range(first, end)))
    assert text[words[f][0] : words[e - 1][1]] == tidied


def test_tidy_span_never_takes_another_entitys_words():
    from pipeline_aioner import tidy_span

    text = "analyze IL-65-72C/G and"
    words = _words(text)
    gene = [i for i, (s, e) in enumerate(words) if text[s:e] in ("IL", "65")]  # "IL", "-", "65"
    gene = set(range(gene[0], gene[-1] + 1))
    first = max(gene) + 1  # "-72C/G", glued to the Gene's "65"
    end = next(i for i, (_, e) in enumerate(words) if text[:e].endswith("72C/G")) + 1
    f, e = tidy_span(text, words, first, end, gene | set(range(first, end)))
    assert text[words[f][0] : words[e - 1][1]] == "-72C/G"


def test_tagger_tidies_edges_unless_told_not_to(tiny_checkpoint):
    """A model that tags whole sentences: tidied, no entity ends on the sentence's period."""
    from aioner.checkpoint import load_checkpoint
    from pipeline_aioner import AIONERTagger

    model, tokenizer = load_checkpoint(str(tiny_checkpoint))
    with torch.no_grad():
        model.classifier.bias.fill_(-100.0)
        model.classifier.bias[model.config.label2id["I-Gene"]] = 100.0
        model.classifier.bias[model.config.label2id["B-Gene"]] = 99.0
    text = "Levels of stem cell factor rose . MK-801 binds CaM ."
    tidied = AIONERTagger(model, tokenizer).tag([text], "Gene")[0]
    raw = AIONERTagger(model, tokenizer, tidy_edges=False).tag([text], "Gene")[0]
    assert any(e["text"].endswith(".") for e in raw)  # the model's spans take the period
    assert tidied and not any(e["text"].endswith(".") for e in tidied)
    assert all(text[e["start"] : e["end"]] == e["text"] for e in tidied)
