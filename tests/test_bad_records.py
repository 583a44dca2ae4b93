"""One bad record never costs the rest of its file (issue 19): every format, --strict, kill -9 and resume."""

import json
import subprocess

from conftest import REPO, corpus_file

from aioner.testing import ONE_THREAD_ENV, TAG, kill_and_resume


def tag(*args):
    return subprocess.run(
        TAG + [str(a) for a in args], cwd=REPO, capture_output=True, text=True, timeout=600, env=ONE_THREAD_ENV
    )


def errors_of(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def jsonl_with_two_bad_records(path, n=1000):
    lines = [
        json.dumps({"id": f"d{i}", "text": f"BRCA{i % 9} mutations cause breast cancer in patient {i}."})
        for i in range(n)
    ]
    lines[500] = lines[500][:25]  # line 501: truncated JSON
    lines[700] = json.dumps({"id": "d700", "body": "no text field"})  # line 701
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_jsonl_bad_records_are_skipped_and_listed(gene_checkpoint, tmp_path):
    src = tmp_path / "shard.jsonl"
    jsonl_with_two_bad_records(src)
    res = tag(src, "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--task", "Gene")
    assert res.returncode == 1, res.stderr[-3000:]
    with open(tmp_path / "out" / "shard.jsonl", encoding="utf-8") as f:
        recs = [json.loads(line) for line in f]
    assert len(recs) == 998 and [r["id"] for r in recs] == [f"d{i}" for i in range(1000) if i not in (500, 700)]
    assert all(r["text"][e["start"] : e["end"]] == e["text"] for r in recs for e in r["entities"])
    errors = errors_of(tmp_path / "out" / "shard.errors.jsonl")
    assert [(e["line"], e["id"], e["action"]) for e in errors] == [(501, None, "skipped"), (701, "d700", "skipped")]
    assert "JSONDecodeError" in errors[0]["reason"] and "'text'" in errors[1]["reason"]
    assert "tagged 998 documents from 1 input(s)" in res.stdout and "2 record(s) skipped" in res.stdout
    assert "line 501" in res.stderr and "line 701" in res.stderr


def test_strict_fails_the_file_and_writes_nothing(gene_checkpoint, tmp_path):
    src = tmp_path / "shard.jsonl"
    jsonl_with_two_bad_records(src)
    (tmp_path / "good.txt").write_text("BRCA1 is a gene.")
    res = tag(
        src,
        tmp_path / "good.txt",
        "--model",
        gene_checkpoint,
        "--output_dir",
        tmp_path / "out",
        "--task",
        "Gene",
        "--strict",
    )
    assert res.returncode == 1
    assert f"{src}, line 501" in res.stderr and "--strict" in res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.jsonl"]  # nothing for the bad file


def test_a_clean_file_has_no_errors_file_and_exits_0(gene_checkpoint, tmp_path):
    src = tmp_path / "clean.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "BRCA1 is a gene."}) + "\n")
    res = tag(src, "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--task", "Gene")
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clean.jsonl"]


def pubtator_with_broken_documents(src, n=30):
    """BC5CDR documents; the 11th loses its title line (an orphan abstract: skipped), the 21st its abstract
    line (tagged with an empty abstract: repaired). Returns the ids tagged and the ids of both."""
    blocks = [
        b
        for b in corpus_file("pubtator", "BC5CDR_TrainDev.PubTator").read_text(encoding="utf-8").split("\n\n")
        if b.strip()
    ][:n]
    ids = [b.split("|", 1)[0] for b in blocks]
    blocks[10] = "\n".join(line for line in blocks[10].split("\n") if "|t|" not in line)
    blocks[20] = "\n".join(line for line in blocks[20].split("\n") if "|a|" not in line)
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return [i for k, i in enumerate(ids) if k != 10], ids[10], ids[20]


def test_pubtator_broken_documents(gene_checkpoint, tmp_path):
    from dataset_scripts.pubtator import read_pubtator

    src = tmp_path / "in" / "docs.pubtator"
    kept, skipped, repaired = pubtator_with_broken_documents(src)
    res = tag(src, "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--task", "Gene")
    assert res.returncode == 1, res.stderr[-3000:]
    out = list(read_pubtator(tmp_path / "out" / "docs.pubtator"))  # strict: every mention fits its text
    assert [d.id for d in out] == kept and all(d.mentions for d in out)
    errors = errors_of(tmp_path / "out" / "docs.errors.jsonl")
    by_action = {e["action"]: e for e in errors}
    assert len(errors) == 2 and by_action["skipped"]["id"] == skipped and by_action["repaired"]["id"] == repaired
    assert all(isinstance(e["line"], int) for e in errors)


def bioc_with_broken_documents(folder):
    """Three documents as BioC XML and JSON; the second's passage has no offset (XML) or a string offset
    (JSON): it cannot be built, the others can."""
    from dataset_scripts.bioc_io import write_bioc_json, write_bioc_xml
    from dataset_scripts.documents import Document, Passage

    docs = [Document(str(i), [Passage(0, f"BRCA{i} mutations cause cancer.", "abstract")], []) for i in range(3)]
    folder.mkdir(parents=True, exist_ok=True)
    write_bioc_xml(docs, folder / "x.xml")
    write_bioc_json(docs, folder / "j.json")
    xml = (folder / "x.xml").read_text(encoding="utf-8")
    head, doc1, tail = xml.partition("<id>1</id>")
    tail = tail.replace("<offset>0</offset>", "", 1)  # the first <offset> after document 1's id: its passage's
    (folder / "x.xml").write_text(head + doc1 + tail, encoding="utf-8")
    obj = json.loads((folder / "j.json").read_text(encoding="utf-8"))
    obj["documents"][1]["passages"][0]["offset"] = "zero"
    del obj["documents"][1]["relations"]  # a missing key: bioc's decoder raises on it
    (folder / "j.json").write_text(json.dumps(obj), encoding="utf-8")


def test_bioc_broken_document(gene_checkpoint, tmp_path):
    from dataset_scripts.bioc_io import read_bioc

    bioc_with_broken_documents(tmp_path / "in")
    res = tag(tmp_path / "in", "--model", gene_checkpoint, "--output_dir", tmp_path / "out", "--task", "Gene")
    assert res.returncode == 1, res.stderr[-3000:]
    for name in ("x", "j"):
        ext = ".xml" if name == "x" else ".json"
        out = list(read_bioc(tmp_path / "out" / (name + ext)))
        assert [d.id for d in out] == ["0", "2"] and all(d.mentions for d in out)
        errors = errors_of(tmp_path / "out" / f"{name}.errors.jsonl")
        assert [(e["id"], e["action"]) for e in errors] == [("1", "skipped")], errors
    assert errors_of(tmp_path / "out" / "x.errors.jsonl")[0]["line"]  # XML: the document's line


def test_kill_9_then_resume_gives_the_same_output_and_errors(gene_checkpoint, tmp_path):
    src = tmp_path / "in" / "docs.pubtator"
    kept, _, _ = pubtator_with_broken_documents(src, n=120)
    whole = tag(
        src, "--model", gene_checkpoint, "--output_dir", tmp_path / "whole", "--task", "Gene", "--chunk_docs", "10"
    )
    assert whole.returncode == 1
    result = kill_and_resume(src, gene_checkpoint, tmp_path / "resumed", chunk_docs=[10, 10], junk=False)
    assert result["kills"] == 1 and result["final_exit"] == 1 and result["leftover_files"] == [], result
    assert 0 < int(result["final_log"].split()[1]) < len(kept), result  # the re-run resumed
    for name in ("docs.pubtator", "docs.errors.jsonl"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
