"""Robustness (issue 7): fuzzed readers and tagger inputs, Unicode offsets, size extremes, kill -9, safe loading.

The fuzz targets (generators of damaged files and their oracles) are ``benchmarks.fuzz``, shared with
``python -m benchmarks.robustness``, which runs the same targets at benchmark size (>= 100,000
cases) and writes ``results/robustness.json``; the tests run them at CI size (a few thousand
cases). The subprocess harness (peak RSS, kill -9 and resume, exactly-once checks) and the tiny
models are ``aioner.testing``; ``gene_checkpoint`` and ``pubtator_head`` come from ``conftest``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import REPO, pubtator_head
from hypothesis import given

from aioner.testing import TAG, check_covered, check_exactly_once, gene_model, kill_and_resume, long_text, run_measured
from benchmarks.fuzz import FUZZ_TARGETS, UNICODE_TEXTS, check_unicode, fuzz_settings
from dataset_scripts.pubtator import read_pubtator

# CI sizes; benchmarks/robustness.py runs the same targets with its own counts.
CI_CASES = {"pubtator": 1200, "bioc": 1000, "conll": 600, "tagger_input": 800, "mixed_files": 300}
CI_UNICODE_EXAMPLES = 300


# =============================================================== fuzz tests (CI size)


@pytest.mark.parametrize("target", sorted(FUZZ_TARGETS))
def test_fuzz(target):
    strategy, check = FUZZ_TARGETS[target]
    fuzz_settings(CI_CASES[target])(given(strategy())(check))()


# =============================================================== Unicode offsets (property test)


# On a small shared machine torch's thread pool waits on busy cores: one thread is several times
# faster for the tiny models here (the CLI runs below get the same through OMP_NUM_THREADS).
@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gene_engine():
    from pipeline_aioner import AIONERTagger

    return AIONERTagger(*gene_model())


def test_unicode_offsets_property(gene_engine, tmp_path_factory):
    work = tmp_path_factory.mktemp("unicode")
    count = [0]

    @fuzz_settings(CI_UNICODE_EXAMPLES)
    @given(title=UNICODE_TEXTS, abstract=UNICODE_TEXTS)
    def prop(title, abstract):
        count[0] += 1
        check_unicode(gene_engine, title, abstract, work)

    prop()
    assert count[0] >= CI_UNICODE_EXAMPLES


# =============================================================== size extremes, kill -9, resume (the CLI)


def size_extreme_inputs(folder: Path, big: int = 200_000) -> dict[str, str]:
    """The inputs of the size test: {file name: what it holds}."""
    folder.mkdir(parents=True, exist_ok=True)
    punct = "".join(".,;:!?()[]{}<>/\\-_=+*&^%$#@~`'\"|" for _ in range(300))
    files = {
        "empty.jsonl": json.dumps({"id": "empty", "text": ""}) + "\n" + json.dumps({"id": "blank", "text": " \n\t "}),
        "title_only.pubtator": "1|t|BRCA1 mutations in breast cancer\n1|a|\n\n",
        "big.txt": long_text(big),
        "token.txt": "ACGT" * 1250,  # one 5,000-character word
        "cjk_token.txt": "基因" * 2500,  # one 5,000-character word of 5,000 sub-words
        "punct.txt": punct,
    }
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return files


def check_size_outputs(out_dir: Path, files: dict[str, str]) -> None:
    recs = {}
    for name in ("empty", "big", "token", "cjk_token", "punct"):
        with open(out_dir / f"{name}.jsonl", encoding="utf-8") as f:
            for r in map(json.loads, f):
                recs[r["id"]] = r
    assert recs["empty"]["entities"] == [] and recs["blank"]["entities"] == []
    for name in ("big", "token", "cjk_token", "punct"):
        r = recs[name]
        assert r["text"] == files[f"{name}.txt"], f"{name}: text changed"
        check_covered(r["text"], [(e["start"], e["end"], e["text"]) for e in r["entities"]], name)
    assert [(e["start"], e["end"]) for e in recs["token"]["entities"]] == [(0, 5000)]
    assert [(e["start"], e["end"]) for e in recs["cjk_token"]["entities"]] == [(0, 5000)]
    [doc] = read_pubtator(out_dir / "title_only.pubtator")
    assert doc.passages[1].text == "" and doc.mentions
    check_covered(doc.text, [(m.start, m.end, m.text) for m in doc.mentions], "title only")


def test_size_extremes_no_crash_no_truncation_bounded_memory(gene_checkpoint, tmp_path):
    """Empty and blank documents, a title-only document, a 200,000-character document, a single
    5,000-character word (ASCII, and CJK: 5,000 sub-words), only punctuation; plus two inputs that
    would share an output name (an error, not a silent skip)."""
    files = size_extreme_inputs(tmp_path / "in")
    (tmp_path / "in" / "clash.jsonl").write_text(json.dumps({"id": "x", "text": "one"}) + "\n")
    (tmp_path / "in" / "clash.txt").write_text("two")
    rc, out, err, rss = run_measured(
        TAG
        + [
            str(tmp_path / "in"),
            "--model",
            str(gene_checkpoint),
            "--output_dir",
            str(tmp_path / "out"),
            "--task",
            "Gene",
        ],
        cwd=REPO,
    )
    assert rc == 1, err[-3000:]  # the clash only
    assert re.findall(r"error: [^\n]*", err) == [  # (after tqdm's progress, on the same line)
        f"error: {tmp_path / 'in' / 'clash.txt'}: its output {tmp_path / 'out' / 'clash.jsonl'} is that of "
        f"{tmp_path / 'in' / 'clash.jsonl'} too; rename one of them or tag them into different folders"
    ]
    assert "tagged 8 documents from 8 input(s)" in out
    check_size_outputs(tmp_path / "out", files)
    assert rss < 2000, f"peak RSS {rss:.0f} MiB tagging a 200,000-character document with a tiny model"


def test_peak_rss_is_the_commands_own_not_its_callers():
    """A child forked from a large process starts with its pages: CI's pytest (about 2 GiB after a few
    hundred tests) once made the size test above read 2011 MiB for a 600 MiB run."""
    import sys

    ballast = bytearray(800 * 2**20)  # this process, 800 MiB larger
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched, so resident
    small = run_measured([sys.executable, "-c", "pass"])
    big = run_measured([sys.executable, "-c", "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"])
    assert small[0] == big[0] == 0, (small, big)
    assert small[3] < 200, small
    assert 300 < big[3] < 500, big
    del ballast


def test_kill_9_repeatedly_then_resume_every_document_exactly_once(gene_checkpoint, tmp_path):
    """Two SIGKILLs mid-run (junk planted in the part file after each: a torn line, a record of
    another run, a non-record), --chunk_docs changed between them, then a run to the end."""
    src = tmp_path / "in" / "bc5cdr.pubtator"
    ids = pubtator_head(200, src)
    result = kill_and_resume(src, gene_checkpoint, tmp_path / "out", chunk_docs=[10, 7, 7])
    assert result["kills"] == 2 and result["final_exit"] == 0, result
    assert result["leftover_files"] == [], result
    tagged = int(re.search(r"tagged (\d+) documents", result["final_log"]).group(1))
    assert 0 < tagged < 200, result  # the last run resumed: it reused the chunks of the run before it
    counts = check_exactly_once(src, tmp_path / "out" / "bc5cdr.pubtator", ids)
    assert counts["resume_lost"] == counts["resume_duplicated"] == 0 and counts["same_order"], counts


# =============================================================== safe loading


def test_pickle_only_checkpoint_is_refused_unless_allowed(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    import shutil

    import torch
    from safetensors.torch import load_file

    from aioner.checkpoint import PickleWeightsError, load_checkpoint
    from aioner.tagging import main

    ckpt = tmp_path / "pickled"
    shutil.copytree(tiny_checkpoint, ckpt)
    weights = load_file(ckpt / "model.safetensors")
    torch.save(weights, ckpt / "pytorch_model.bin")
    (ckpt / "model.safetensors").unlink()
    monkeypatch.delenv("AIONER_ALLOW_PICKLE", raising=False)
    with pytest.raises(PickleWeightsError, match=r"pickle \(pytorch_model.bin\).*allow_pickle=True"):
        load_checkpoint(str(ckpt))
    model, _ = load_checkpoint(str(ckpt), allow_pickle=True)
    torch.testing.assert_close(model.state_dict()["classifier.weight"], weights["classifier.weight"])
    (tmp_path / "in.txt").write_text("BRCA1 is a gene.")
    args = [str(tmp_path / "in.txt"), "--model", str(ckpt), "--output_dir", str(tmp_path / "out")]
    assert main(args) == 2
    assert "refused" in capsys.readouterr().err and not (tmp_path / "out" / "in.jsonl").exists()
    monkeypatch.setenv("AIONER_ALLOW_PICKLE", "")  # restored after the test (--allow_pickle sets it)
    assert main(args + ["--allow_pickle"]) == 0
    assert (tmp_path / "out" / "in.jsonl").exists()


def test_update_keeps_the_provenance_of_the_parts_it_does_not_rerun(tmp_path, monkeypatch):
    """`--update` reruns some parts: the kept ones still say which run measured them."""
    import sys

    from benchmarks import robustness

    out = tmp_path / "robustness.json"
    earlier = {"command": "python -m benchmarks.robustness", "date": "2026-01-01", "seconds": 900.0}
    out.write_text(json.dumps({**earlier, "machine": "old", "fuzz": {"cases": 7}}))
    skip = ["fuzz", "mixed", "rss", "tagging", "training"]
    argv = ["robustness", "--skip", *skip, "--unicode_examples", "3", "--update", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    robustness.main()
    result = json.loads(out.read_text())
    assert result["fuzz"] == {"cases": 7} and result["fuzz_cases"] == 7  # kept
    assert result["unicode"]["examples"] == 3 and result["unicode"]["ran"]["command"] == result["command"]
    assert result["previous_runs"] == [{**earlier, "machine": "old"}]
    assert result["parts_run"] == ["unicode"]
