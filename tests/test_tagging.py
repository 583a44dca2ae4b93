"""aioner-tag: formats in and out, exact offsets, overlapping types, resume after kill -9, bad inputs, HTML."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, corpus_file, tiny_tagger

TAG = [sys.executable, "-m", "aioner.tagging"]


def biored_head(tmp_path, n):
    text = corpus_file("pubtator", "BioRED_Test.PubTator").read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip()][:n]
    path = tmp_path / "in" / "biored.pubtator"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return path


def tag(*args, check=True):
    res = subprocess.run(TAG + [str(a) for a in args], cwd=REPO, capture_output=True, text=True, timeout=600)
    if check and res.returncode != 0:
        raise AssertionError(res.stderr[-4000:])
    return res


def test_pubtator_in_pubtator_out_keeps_text_and_offsets(gene_checkpoint, tmp_path):
    from dataset_scripts.pubtator import read_pubtator

    src = biored_head(tmp_path, 10)
    tag(src, "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--task", "Gene")
    out = tmp_path / "out" / "biored.pubtator"
    gold, pred = list(read_pubtator(src)), list(read_pubtator(out))  # strict: every mention must match its text
    assert [d.id for d in pred] == [d.id for d in gold]
    for g, p in zip(gold, pred):
        assert [x.text for x in p.passages] == [x.text for x in g.passages]  # byte for byte
        assert p.mentions and {m.type for m in p.mentions} == {"Gene"}
        assert all(p.text[m.start : m.end] == m.text for m in p.mentions)
    assert not list((tmp_path / "out").glob("*.part*")) and not list((tmp_path / "out").glob("*.tmp"))


def test_bioc_xml_and_json_round_trip_with_passage_offsets(gene_checkpoint, tmp_path):
    from dataset_scripts.bioc_io import read_bioc, write_bioc_json, write_bioc_xml
    from dataset_scripts.pubtator import read_pubtator

    docs = list(read_pubtator(biored_head(tmp_path, 5)))
    for d in docs:
        d.passages[1].kind = "abstract"
    (tmp_path / "bioc").mkdir()
    write_bioc_xml(docs, tmp_path / "bioc" / "a.xml")
    write_bioc_json(docs, tmp_path / "bioc" / "b.json")
    tag(tmp_path / "bioc", "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--task", "Gene")
    for name in ("a.xml", "b.json"):
        pred = list(read_bioc(tmp_path / "out" / name))  # strict: annotation text must equal the passage text
        assert [p.text for d in pred for p in d.passages] == [p.text for d in docs for p in d.passages]
        assert all(m.text for d in pred for m in d.mentions)
        assert any(m.start > d.passages[1].offset for d in pred for m in d.mentions)  # abstract passage tagged


def test_text_and_jsonl_give_jsonl_with_exact_offsets(gene_checkpoint, tmp_path):
    (tmp_path / "in").mkdir()
    text = "Naïve T cells express IL‐2 😀 and β-catenin.\nSecond line\twith a tab."
    (tmp_path / "in" / "note.txt").write_text(text, encoding="utf-8")
    with open(tmp_path / "in" / "docs.jsonl", "w", encoding="utf-8") as f:
        f.write(
            json.dumps({"id": "d1", "text": "BRCA1 and TP53."}) + "\n" + json.dumps({"id": "d2", "text": ""}) + "\n"
        )
    tag(tmp_path / "in", "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--task", "Gene")
    recs = [json.loads(l) for f in ("note.jsonl", "docs.jsonl") for l in open(tmp_path / "out" / f, encoding="utf-8")]
    assert recs[0]["text"] == text and [r["id"] for r in recs[1:]] == ["d1", "d2"]
    for r in recs:
        assert all(r["text"][e["start"] : e["end"]] == e["text"] for e in r["entities"])
    assert recs[2]["entities"] == []
    assert "😀" in {e["text"] for e in recs[0]["entities"]}


def test_tqdm_disable_silences_the_progress_bar(gene_checkpoint, tmp_path):
    """An explicit disable= hides tqdm's own TQDM_DISABLE: the CLI must still honour it (logs of long runs)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("BRCA1 and TP53.", encoding="utf-8")
    for flag, shown in (("0", True), ("1", False)):
        env = {**os.environ, "TQDM_DISABLE": flag}
        cmd = TAG + [str(tmp_path / "in"), "--model", str(gene_checkpoint), "--output_dir", str(tmp_path / flag)]
        res = subprocess.run(cmd + ["--task", "Gene"], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
        assert res.returncode == 0, res.stderr[-4000:]
        assert ("tagging:" in res.stderr) is shown


@pytest.mark.parametrize("value, off", [("1", True), ("true", True), ("0", False), ("", False), ("2", False)])
def test_an_unclear_tqdm_disable_leaves_the_bars_on_rather_than_failing(value, off, monkeypatch):
    from aioner import progress_bars_disabled

    monkeypatch.setenv("TQDM_DISABLE", value)
    assert progress_bars_disabled() is off


def test_bare_overlapping_flag_may_stand_before_the_inputs(monkeypatch):
    import aioner.tagging as tagging

    seen = []
    monkeypatch.setattr(tagging, "run", lambda args: seen.append(args) or 0)
    assert tagging.main(["--overlapping", "a.txt", "b.txt", "--model", "m", "--output_dir", "o"]) == 0
    assert seen[-1].inputs == ["a.txt", "b.txt"] and seen[-1].overlapping == "nested"
    assert tagging.main(["a.txt", "--overlapping", "union", "--model", "m", "--output_dir", "o"]) == 0
    assert seen[-1].inputs == ["a.txt"] and seen[-1].overlapping == "union"
    assert tagging.main(["a.txt", "--model", "m", "--output_dir", "o", "--overlapping"]) == 0
    assert seen[-1].overlapping == "nested"
    assert tagging.main(["a.txt", "--model", "m", "--output_dir", "o"]) == 0 and seen[-1].overlapping is None


def test_overlapping_returns_every_types_entities(gene_checkpoint, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.txt").write_text("growth hormone deficiency", encoding="utf-8")
    tag(tmp_path / "in", "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--overlapping", "union")
    ents = json.loads(open(tmp_path / "out" / "x.jsonl").readline())["entities"]
    assert {(e["text"], e["type"]) for e in ents} >= {("growth", "Gene"), ("growth", "Disease")}


def test_overlapping_merges_nested_entities_of_two_types():
    """The per-type passes are merged without losing a nested entity (a constructed engine)."""
    from aioner.tagging import DocumentTagger
    from aioner_scheme import AIOScheme
    from dataset_scripts.documents import Document, Passage

    text = "growth hormone deficiency and aspirin"

    calls = []

    class Engine:
        scheme = AIOScheme()

        def tag(self, texts, task, passages, only=None):
            calls.append((task, only))
            found = {
                "ALL": [(0, 25, "Disease")],
                "Gene": [(0, 14, "Gene")],
                "Disease": [(0, 25, "Disease")],
                "Chemical": [(30, 37, "Chemical")],
            }.get(task, [])
            return [[{"start": s, "end": e, "type": t, "text": text[s:e], "score": 1.0} for s, e, t in found]]

    def run(mode):
        ents = DocumentTagger(Engine(), "ALL", overlapping=mode).tag([Document("d", [Passage(0, text)], [])])[0]
        return [(e["text"], e["type"]) for e in ents]

    flat = [("growth hormone deficiency", "Disease")]
    assert run(None) == flat
    # nested: the flat layer plus what nests in another type; the Chemical the ALL pass did not find stays out
    calls.clear()
    assert run("nested") == run(True) == flat + [("growth hormone", "Gene")]
    # The single-type passes are asked only about the sentences holding an entity found so far.
    assert calls[0] == ("ALL", None) and calls[1] == ("Gene", [[(0, 25)]])
    assert all(only == [[(0, 25), (0, 14)]] for task, only in calls[2:7])
    assert run("union") == flat + [("growth hormone", "Gene"), ("aspirin", "Chemical")]
    with pytest.raises(ValueError, match="nested"):
        run("all")


def test_windows_of_only_reads_the_sentences_overlapping_the_spans():
    from pipeline_aioner import AIONERTagger

    tagger = AIONERTagger(*tiny_tagger())
    text = "BRCA1 is a gene. Aspirin helps a lot. Cancer kills."
    every = tagger.windows_of([text], "Gene")
    assert len(every) == 3
    start = text.index("Aspirin")
    only = tagger.windows_of([text], "Gene", only=[[(start, start + 7)]])
    assert only == [every[1]]  # the same window, built the same way
    assert tagger.windows_of([text], "Gene", only=[[]]) == []
    assert len(tagger.windows_of([text], "Gene", only=[[(0, len(text))]])) == 3
    assert tagger.tag([text], "Gene", only=[[]]) == [[]]


def test_killed_run_resumes_with_every_document_exactly_once(gene_checkpoint, tmp_path):
    from dataset_scripts.pubtator import read_pubtator

    src = corpus_file("pubtator", "BC5CDR_Test.PubTator")  # 500 documents
    out_dir = tmp_path / "out"
    args = TAG + [
        str(src),
        "--model",
        str(gene_checkpoint),
        "--output_dir",
        str(out_dir),
        "--task",
        "Gene",
        "--chunk_docs",
        "25",
    ]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out_dir / "BC5CDR_Test.pubtator.part0"
    deadline = time.time() + 300
    while time.time() < deadline and (not part.exists() or part.read_text().count("\n") < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out_dir / "BC5CDR_Test.pubtator").exists(), "killed too late: output already complete"
    done_before = part.read_text().count("\n")
    assert 2 <= done_before < 20
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    ids = [d.id for d in read_pubtator(out_dir / "BC5CDR_Test.pubtator")]
    assert ids == [d.id for d in read_pubtator(src)] and len(ids) == 500
    assert not list(out_dir.glob("*.part*"))
    # A third run finds the output finished and tags nothing.
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert "tagged 0 documents" in res.stdout


def test_two_ranks_share_a_small_file_and_write_what_one_process_writes(gene_checkpoint, tmp_path):
    """torchrun with two (gloo, CPU) ranks: a 10-document file is cut into one chunk per rank, and the
    assembled output is byte for byte the single-process one."""
    from aioner.tagged_output import chunk_size

    assert chunk_size(10, 256, 2) == 5 and chunk_size(10_000, 256, 2) == 256 and chunk_size(0, 256, 2) == 1
    src = biored_head(tmp_path, 10)
    tag(src, "--model", gene_checkpoint, "--output_dir", tmp_path / "one", "--task", "Gene")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29537",
        *TAG[1:],
        str(src),
        "--model",
        str(gene_checkpoint),
        "--output_dir",
        str(tmp_path / "two"),
        "--task",
        "Gene",
    ]
    res = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert res.returncode == 0, res.stderr[-4000:]
    # One summary line, from rank 0 of two real ranks (two lone processes would each print theirs).
    assert res.stdout.count("tagged ") == 1 and "tagged 10 documents from 1 input(s) by 2 processes" in res.stdout
    one, two = tmp_path / "one" / "biored.pubtator", tmp_path / "two" / "biored.pubtator"
    assert two.read_bytes() == one.read_bytes()
    assert not list((tmp_path / "two").glob("*.part*"))


def test_compiled_tagging_writes_what_eager_tagging_writes(gene_checkpoint, tmp_path):
    src = biored_head(tmp_path, 3)
    tag(src, "--model", gene_checkpoint, "--output_dir", tmp_path / "eager", "--task", "Gene")
    res = tag(src, "--model", gene_checkpoint, "--output_dir", tmp_path / "compiled", "--task", "Gene", "--compile")
    assert "tagging uncompiled" not in res.stderr  # it really compiled
    assert (tmp_path / "compiled" / "biored.pubtator").read_bytes() == (
        tmp_path / "eager" / "biored.pubtator"
    ).read_bytes()


def test_a_failing_compile_falls_back_to_eager(monkeypatch):
    from pipeline_aioner import AIONERTagger

    def broken_compile(fn, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler")

        return run

    model, tokenizer = tiny_tagger()
    text = "BRCA1 mutations cause breast cancer."
    expected = AIONERTagger(model, tokenizer).tag([text])
    monkeypatch.setattr(torch, "compile", broken_compile)
    tagger = AIONERTagger(model, tokenizer, compile=True)
    with pytest.warns(UserWarning, match="no C.. compiler.*tagging uncompiled"):
        assert tagger.tag([text]) == expected
    assert tagger.compile is False


def test_bad_inputs_are_named_and_the_run_goes_on(gene_checkpoint, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "empty.pubtator").write_text("")
    (inp / "broken.xml").write_text("this is not XML at all")
    (inp / "noabs.pubtator").write_text("123|t|A title\n123\t0\t1\tA\tGene\n\n456|t|Other\n456|a|Fine text.\n\n")
    os.symlink(tmp_path / "missing-target", inp / "gone.txt")
    (inp / "good.txt").write_text("BRCA1 is a gene.")
    res = tag(inp, "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--task", "Gene", check=False)
    assert res.returncode == 1
    err = res.stderr
    assert "empty.pubtator: empty file" in err
    assert "broken.xml" in err
    assert "noabs.pubtator" in err and "document 123" in err
    assert "gone.txt" in err
    assert (tmp_path / "out" / "good.jsonl").exists() and (tmp_path / "out" / "noabs.pubtator").exists()
    res = tag(
        inp / "good.txt", "--model", gene_checkpoint, "--output_dir", tmp_path / "o2", "--task", "Protein", check=False
    )
    assert res.returncode == 2 and "unknown task 'Protein'" in res.stderr


def test_html_view(gene_checkpoint, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("BRCA1 <b>causes</b> cancer & more.")
    tag(
        tmp_path / "in",
        "--model",
        gene_checkpoint,
        "--output_dir",
        tmp_path / "out",
        "--overlapping",
        "union",
        "--html",
        tmp_path / "view.html",
    )
    page = (tmp_path / "view.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<mark" in page and "Disease" in page
    assert "&lt;" in page and "<b>" not in page and "</b>" not in page  # input text is escaped


def test_raw_edges_keeps_the_edges_the_model_decoded(tiny_checkpoint, tmp_path):
    """A model that tags whole sentences as one Gene: tidied by default, as decoded with --raw_edges."""
    from aioner.checkpoint import load_checkpoint, save_checkpoint

    model, tokenizer = load_checkpoint(str(tiny_checkpoint))
    with torch.no_grad():
        model.classifier.bias.fill_(-100.0)
        model.classifier.bias[model.config.label2id["I-Gene"]] = 100.0
        model.classifier.bias[model.config.label2id["B-Gene"]] = 99.0
    checkpoint = save_checkpoint(model, tokenizer, tmp_path / "sentences")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Levels of stem cell factor ( rose .", encoding="utf-8")
    for flags, out in (([], "tidied"), (["--raw_edges"], "raw")):
        tag(tmp_path / "in", "--model", checkpoint, "--output_dir", tmp_path / out, "--task", "Gene", *flags)
    tidied, raw = ([json.loads(l)["entities"] for l in open(tmp_path / d / "a.jsonl")][0] for d in ("tidied", "raw"))
    assert [e["text"] for e in raw] == ["Levels of stem cell factor ( rose ."]
    assert [e["text"] for e in tidied] == ["Levels of stem cell factor ( rose"]
