"""The corpora end to end: registry, conversion to AIO rows, Parquet configs, downloads.

Real files from shared/corpora (skipped when absent). Each PubTator corpus split is
converted once per session (``converted``) and shared by the round-trip, count and
representability tests; the whole file takes about a minute and a half on 2 cores.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import socket
import threading
import time
from collections import Counter
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from aioner_scheme import AIOScheme
from dataset_scripts import build as build_mod
from dataset_scripts import corpora, hf_datasets
from dataset_scripts.aio import convert_split, rows_to_documents, scheme_for
from dataset_scripts.corpora import CORPORA, CorpusUnavailableError, SourceFile, fetch, get_corpus, sha256_of
from dataset_scripts.documents import CorpusFormatError
from dataset_scripts.pubtator import read_pubtator

# Located like conftest.CORPORA (read here, before any test changes the environment).
SHARED = Path(os.environ.get("AIONER_CORPORA", Path(__file__).resolve().parents[1].parent / "shared" / "corpora"))
PUBTATOR = [c.name for c in CORPORA.values() if c.format == "pubtator"]
needs_corpora = pytest.mark.skipif(not (SHARED / "pubtator").is_dir(), reason=f"no corpora at {SHARED}")

TITLE_OR_ABSTRACT = re.compile(r"[^\t|]*\|[ta]\|")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Never read or fill the user's download cache; conftest already sets HF_HUB_OFFLINE=1."""
    monkeypatch.setenv("AIONER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("AIONER_CORPORA_MIRROR", raising=False)
    monkeypatch.delenv("AIONER_OFFLINE", raising=False)


# ----------------------------------------------------------------- helpers


def source_of(corpus, split: str) -> str:
    """The file a split is read from: train and dev share the training file when there is no dev file."""
    return corpus.splits["train" if corpus.dev_from_train and split in ("train", "dev") else split].path


def local_splits(name: str) -> list[str]:
    """The corpus' splits whose file is in shared/corpora (NLM-Chem's training file is not)."""
    corpus = get_corpus(name)
    return [s for s in hf_datasets.corpus_splits(name) if (SHARED / source_of(corpus, s)).is_file()]


@functools.cache
def converted(name: str, split: str):
    return convert_split(name, split)


def annotation_lines(path: Path) -> list[int]:
    """1-based numbers of the lines that are neither blank nor a title/abstract line."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    return [i for i, line in enumerate(lines, 1) if line.strip() and not TITLE_OR_ABSTRACT.match(line)]


def problem_lines(report) -> list[int]:
    return [int(re.search(r", line (\d+)", p).group(1)) for p in report.reader_problems]


def dataset_ids(docs) -> list[str]:
    """The documented document_id rule: a repeated file id becomes id#k (1-based occurrence)."""
    counts, seen, out = Counter(d.id for d in docs), Counter(), []
    for d in docs:
        seen[d.id] += 1
        out.append(f"{d.id}#{seen[d.id]}" if counts[d.id] > 1 else d.id)
    return out


def expected_mentions(doc, corpus) -> list[tuple]:
    """An independent statement of the declared fixes: type mapping, ignored types,
    BioID's trailing "cell(s)", exact duplicates merged, the longest of overlapping spans kept."""
    found = set()
    for m in doc.mentions:
        aio_type = corpus.types[m.type]
        if aio_type is None:
            continue
        start, end, text = m.start, m.end, m.text
        if "strip_cell_suffix" in corpus.fixes:
            cut = re.search(r"[\s-]+cells?$", text, re.IGNORECASE)
            if cut and cut.start() > 0:
                end, text = start + cut.start(), text[: cut.start()]
        found.add((start, end, aio_type, text))
    kept = []
    for m in sorted(found, key=lambda m: (m[0] - m[1], m[0])):
        if all(m[1] <= k[0] or m[0] >= k[1] for k in kept):
            kept.append(m)
    return sorted(kept)


def explained(report) -> int:
    return report.mentions + sum(report.ignored_types.values()) + report.overlap_dropped + report.duplicates_merged


# ----------------------------------------------------------------- registry


def test_registry_matches_aioner_list_and_vocab():
    listing = SHARED / "aioner_list_train.txt"
    if not listing.is_file():
        pytest.skip("aioner_list_train.txt not available")
    checked = 0
    for line in listing.read_text().splitlines():
        file, task, *maps = line.split("\t")
        matches = [
            c
            for c in CORPORA.values()
            if c.format == "pubtator" and c.task == task and c.splits["train"].path == f"pubtator/{file}"
        ]
        assert len(matches) == 1, line
        corpus, used = matches[0], set()
        for m in maps:
            aio_type, raws = m.split(":")
            for raw in raws.split("|"):
                assert corpus.types[raw] == aio_type, (corpus.name, raw)
                used.add(raw)
        assert all(t is None for raw, t in corpus.types.items() if raw not in used), corpus.name
        checked += 1
    assert checked == 11
    vocab = (SHARED / "AIO_label.vocab").read_text().split()
    labels = AIOScheme().labels
    assert len(labels) == len(vocab) == 19
    assert set(labels) - {"O-ALL"} == set(vocab) - {"O"}


# ----------------------------------------------------------------- criteria 1, 3 and 6 on every corpus


@needs_corpora
@pytest.mark.parametrize("name", PUBTATOR)
def test_round_trip_reproduces_gold_mentions(name):
    """PubTator -> rows -> rows_to_documents gives back every gold mention (after the fixes)."""
    corpus = get_corpus(name)
    splits = local_splits(name)
    assert splits, f"no file of {name} is local"
    labels = scheme_for(corpus).labels
    by_file: dict[str, list[str]] = {}
    for split in splits:
        by_file.setdefault(source_of(corpus, split), []).append(split)
    for rel, file_splits in by_file.items():
        file_docs = list(read_pubtator(SHARED / rel, strict=False))
        originals = dict(zip(dataset_ids(file_docs), file_docs))
        expected = {i: expected_mentions(d, corpus) for i, d in originals.items()}
        rebuilt, rows_in = {}, {}
        for split in file_splits:
            rows, report = converted(name, split)
            ids = [r["id"] for r in rows]
            assert len(ids) == len(set(ids)), f"{name}/{split}: row ids repeat"
            for r in rows:
                assert r["corpus"] == name and r["task"] == corpus.task
                assert r["tokens"] == [r["text"][a - r["offset"] : b - r["offset"]] for a, b in r["token_spans"]]
                assert len(r["labels"]) == len(r["tokens"])
            docs = list(rows_to_documents(rows, labels))
            assert len({d.id for d in docs}) == len(docs)
            for d in docs:
                assert d.id not in rebuilt, f"{d.id} in two splits of {rel}"
                rebuilt[d.id], rows_in[d.id] = d, split
        assert set(rebuilt) <= set(originals)
        missing = [i for i, m in expected.items() if m and i not in rebuilt]
        assert not missing, f"{name}: documents with gold mentions and no rows: {missing[:5]}"
        total = 0
        for doc_id, doc in rebuilt.items():
            text = originals[doc_id].text
            got = sorted((m.start, m.end, m.type, m.text) for m in doc.mentions)
            assert got == expected[doc_id], f"{name} {doc_id} ({rows_in[doc_id]})"
            assert all(text[s:e] == t for s, e, _, t in got)
            total += len(got)
        assert (
            total == sum(converted(name, s)[1].mentions for s in file_splits) == sum(len(m) for m in expected.values())
        )


@needs_corpora
@pytest.mark.parametrize("name", PUBTATOR)
def test_counts_explain_every_mention_line(name):
    """mentions + ignored + overlap dropped + duplicates + reader problems == the file's mention lines."""
    corpus = get_corpus(name)
    by_file: dict[str, list] = {}
    for split in local_splits(name):
        by_file.setdefault(source_of(corpus, split), []).append(converted(name, split)[1])
    for rel, reports in by_file.items():
        lines = annotation_lines(SHARED / rel)
        assert sum(explained(r) + len(r.reader_problems) for r in reports) == len(lines), rel
        # Each problem is counted once, in the split its document went to.
        found = [n for r in reports for n in problem_lines(r)]
        assert len(found) == len(set(found)) and set(found) <= set(lines)
        for r in reports:
            assert all(str(SHARED / rel) in p for p in r.reader_problems)


@needs_corpora
@pytest.mark.parametrize("name", PUBTATOR)
def test_every_gold_mention_is_whole_words(name):
    for split in local_splits(name):
        report = converted(name, split)[1]
        assert report.not_representable == [], f"{name}/{split}"
        assert report.representable == report.mentions > 0, f"{name}/{split}"


# ----------------------------------------------------------------- criterion 3: crafted bad input

GOOD = (
    "111|t|Breast cancer and HeLa cells.\n111|a|Ovarian cancer too.\n"
    "111\t0\t13\tBreast cancer\tSpecificDisease\n111\t30\t44\tOvarian cancer\tSpecificDisease\n\n"
)


def crafted_corpus(tmp_path, monkeypatch, content, base="NCBI-Disease", **changes):
    """A registry corpus read from a file of ours (no checksum, no URL) in a corpora folder of ours."""
    folder = tmp_path / "corpora"
    (folder / "pubtator").mkdir(parents=True, exist_ok=True)
    path = folder / "pubtator" / "Crafted.PubTator"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    monkeypatch.setenv("AIONER_CORPORA", str(folder))
    source = SourceFile("pubtator/Crafted.PubTator", "", None)
    changes.setdefault("splits", {"train": source, "test": source})
    return dataclasses.replace(get_corpus(base), name="Crafted", **changes), path


BAD_LINES = {
    # name: (extra lines for a second document 222, expected message, line of the problem)
    "text_mismatch": ("222\t0\t4\tLung\tSpecificDisease", "does not match the document text", 3),
    "offsets_outside": ("222\t40\t48\tleukemia\tSpecificDisease", "outside the document text", 3),
    "non_numeric_offset": ("222\t1x\t8\tleukemia\tSpecificDisease", "non-numeric offset", 3),
    "truncated_last_line": ("222\t0\t8\tleuk", "truncated?", 3),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_mention_line_is_counted_or_raised(case, tmp_path, monkeypatch):
    extra, message, rel_line = BAD_LINES[case]
    second = f"222|t|Leukemia in mice.\n222|a|\n222\t0\t8\tLeukemia\tSpecificDisease\n{extra}"
    corpus, path = crafted_corpus(tmp_path, monkeypatch, GOOD + second + ("\n" if "truncated" not in case else ""))
    line = GOOD.count("\n") + rel_line + 1
    rows, report = convert_split(corpus, "test")
    assert len(report.reader_problems) == 1
    problem = report.reader_problems[0]
    assert str(path) in problem and f"line {line}" in problem and "document 222" in problem and message in problem
    assert report.mentions == 3 and explained(report) + 1 == len(annotation_lines(path)) == 4
    assert sorted(m.text for d in rows_to_documents(rows, scheme_for(corpus).labels) for m in d.mentions) == [
        "Breast cancer",
        "Leukemia",
        "Ovarian cancer",
    ]
    with pytest.raises(CorpusFormatError) as err:
        convert_split(corpus, "test", strict=True)
    assert (err.value.path, err.value.line, err.value.doc_id) == (str(path), line, "222")
    assert message in str(err.value)


def test_no_title_line_is_counted(tmp_path, monkeypatch):
    content = GOOD + "333|a|An abstract with no title.\n333\t3\t11\tabstract\tSpecificDisease\n\n"
    corpus, path = crafted_corpus(tmp_path, monkeypatch, content)
    rows, report = convert_split(corpus, "test")
    assert report.documents == 1 and report.mentions == 2
    assert len(report.reader_problems) == 2
    assert all(str(path) in p and "document 333" in p and "without a title line" in p for p in report.reader_problems)
    assert problem_lines(report) == [6, 7]
    mention_problems = [n for n in problem_lines(report) if n in annotation_lines(path)]
    assert explained(report) + len(mention_problems) == len(annotation_lines(path))
    with pytest.raises(CorpusFormatError) as err:
        convert_split(corpus, "test", strict=True)
    assert (err.value.path, err.value.line, err.value.doc_id) == (str(path), 6, "333")


def test_unknown_raw_type_names_file_line_and_document(tmp_path, monkeypatch):
    content = GOOD.replace("30\t44\tOvarian cancer\tSpecificDisease", "30\t44\tOvarian cancer\tTumour")
    corpus, path = crafted_corpus(tmp_path, monkeypatch, content)
    with pytest.raises(CorpusFormatError) as err:
        convert_split(corpus, "test")
    assert (err.value.path, err.value.line, err.value.doc_id) == (str(path), 4, "111")
    assert "'Tumour'" in str(err.value) and str(path) in str(err.value) and "document 111" in str(err.value)


def test_wrong_encoding_names_file_line_and_document(tmp_path, monkeypatch):
    content = GOOD.encode() + "222|t|Caf\u00e9 disease.\n222|a|\n".encode("latin-1")
    corpus, path = crafted_corpus(tmp_path, monkeypatch, content)
    with pytest.raises(CorpusFormatError) as err:
        convert_split(corpus, "test")  # not lenient: every offset after it would be suspect
    assert (err.value.path, err.value.line, err.value.doc_id) == (str(path), 6, "222")
    assert "UTF-8" in str(err.value)


def test_truncated_file_mid_title(tmp_path, monkeypatch):
    corpus, path = crafted_corpus(tmp_path, monkeypatch, GOOD + "222|t|Leukemia in mi")
    rows, report = convert_split(corpus, "test")
    assert report.documents == 2 and report.mentions == 2
    assert len(report.reader_problems) == 1 and "line 6" in report.reader_problems[0]
    assert "document 222" in report.reader_problems[0] and "abstract" in report.reader_problems[0]


def test_fixes_overlaps_duplicates_and_ignored_types(tmp_path, monkeypatch):
    text = "HeLa cells and MCF-7 cells were used with TP53."
    content = (
        f"9|t|{text}\n9|a|\n"
        "9\t0\t10\tHeLa cells\tCellLine\n9\t0\t4\tHeLa\tCellLine\n"  # duplicate once 'cells' goes
        "9\t15\t26\tMCF-7 cells\tCellLine\n9\t15\t18\tMCF\tCellLine\n"  # nested: the longer stays
        "9\t42\t46\tTP53\tGene\n\n"
    )  # a type the task does not use
    corpus, path = crafted_corpus(
        tmp_path, monkeypatch, content, base="BioID", types={"CellLine": "CellLine", "Gene": None}
    )
    rows, report = convert_split(corpus, "test")
    assert (
        report.mentions,
        report.suffix_fixed,
        report.duplicates_merged,
        report.overlap_dropped,
        dict(report.ignored_types),
    ) == (2, 2, 1, 1, {"Gene": 1})
    assert explained(report) == len(annotation_lines(path)) == 5
    (doc,) = rows_to_documents(rows, scheme_for(corpus).labels)
    assert [(m.start, m.end, m.type, m.text) for m in doc.mentions] == [
        (0, 4, "CellLine", "HeLa"),
        (15, 20, "CellLine", "MCF-7"),
    ]


def test_problems_follow_their_document_into_train_or_dev(tmp_path, monkeypatch):
    blocks = []
    for i in range(40):
        blocks.append(
            f"{1000 + i}|t|Breast cancer.\n{1000 + i}|a|\n"
            f"{1000 + i}\t0\t13\tBreast cancer\tSpecificDisease\n"
            f"{1000 + i}\t0\t6\tBreath\tSpecificDisease\n"
        )
    corpus, path = crafted_corpus(tmp_path, monkeypatch, "\n".join(blocks), dev_from_train=True)
    reports = {s: convert_split(corpus, s) for s in ("train", "dev")}
    assert {s: r.documents for s, (_, r) in reports.items()}.keys() == {"train", "dev"}
    assert all(r.documents > 0 for _, r in reports.values())
    for rows, report in reports.values():
        ids = {r["document_id"] for r in rows}
        assert len(report.reader_problems) == report.documents == len(ids)
        assert {re.search(r"document (\d+)", p).group(1) for p in report.reader_problems} == ids
    assert sum(explained(r) + len(r.reader_problems) for _, r in reports.values()) == len(annotation_lines(path))
    # Excluded documents take their problems with them.
    excluded = {"1000", "1001", "1002", "1003"}
    both = [convert_split(corpus, s, exclude_ids=excluded)[1] for s in ("train", "dev")]
    assert sum(r.test_overlap_removed for r in both) == 4
    assert sum(len(r.reader_problems) for r in both) == 36


def test_bad_lines_are_counted_in_the_build_report(tmp_path, monkeypatch):
    second = "222|t|Leukemia in mice.\n222|a|\n222\t0\t8\tLeukemia\tSpecificDisease\n222\t0\t4\tLung\tSpecificDisease\n"
    corpus, path = crafted_corpus(
        tmp_path, monkeypatch, GOOD + second, splits={"test": SourceFile("pubtator/Crafted.PubTator", "", None)}
    )
    monkeypatch.setitem(CORPORA, "Crafted", corpus)
    out = tmp_path / "built"
    out.mkdir()
    build_mod.build(out, ["Crafted"])
    (row,) = json.loads((out / "build_report.json").read_text())["rows"]
    assert row["mentions"] == 3 and len(row["reader_problems"]) == 1
    assert "line 9" in row["reader_problems"][0] and "document 222" in row["reader_problems"][0]
    assert "| Crafted | test | 2 | 3 | 3 | 3 | 0 | 0 | 0 | 1 | 0 |" in (out / "README.md").read_text()


# ----------------------------------------------------------------- criteria 2 and 7: Parquet configs


@pytest.fixture
def opened(monkeypatch) -> list:
    """The URLs opened during the test; each attempt also fails, so offline code that tries the network
    is caught by an assertion instead of hanging on a retry."""
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise OSError(f"the test forbids network access ({url})")

    monkeypatch.setattr(corpora.urllib.request, "urlopen", refuse)
    return calls


@needs_corpora
def test_built_configs_load_offline_with_no_remote_code(tmp_path, monkeypatch, capsys, opened):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "built"
    out.mkdir()
    built, reports = build_mod.build(out, ["BioRED", "JNLPBA"])
    assert not opened
    assert "JNLPBA/train skipped" in capsys.readouterr().err  # not local, no download offline
    assert not list(out.rglob("*.py"))
    by_split = {(r.corpus, hf_datasets.SPLIT_NAMES[r.split]): r for r in reports}
    expected_features = {
        "BioRED": hf_datasets.features(AIOScheme()),
        "JNLPBA": hf_datasets.features(scheme_for(get_corpus("JNLPBA"))),
    }
    for config, split_names in (("BioRED", ["train", "validation", "test"]), ("JNLPBA", ["validation", "test"])):
        ds = datasets.load_dataset(str(out), config, cache_dir=str(tmp_path / "hf-cache"))
        assert sorted(ds) == sorted(split_names)
        for split in split_names:
            assert ds[split].features == expected_features[config]
            assert ds[split].num_rows == by_split[(config, split)].sentences > 0
            assert len(set(ds[split]["document_id"])) == by_split[(config, split)].documents
    labels = (
        datasets.load_dataset(str(out), "BioRED", split="test", cache_dir=str(tmp_path / "hf-cache"))
        .features["labels"]
        .feature
    )
    assert labels.names == AIOScheme().labels and len(labels.names) == 19
    ner = datasets.load_dataset(str(out), "JNLPBA", split="test", cache_dir=str(tmp_path / "hf-cache"))
    assert {n[2:] for n in ner.features["labels"].feature.names if n[:2] in ("B-", "I-")} == {
        "protein",
        "DNA",
        "RNA",
        "cell_line",
        "cell_type",
    }
    # The dataset card: YAML configs for each built config, a table row per split.
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert {c["config_name"]: sorted(f["split"] for f in c["data_files"]) for c in meta["configs"]} == {
        "BioRED": ["test", "train", "validation"],
        "JNLPBA": ["test", "validation"],
    }
    for c in meta["configs"]:
        for f in c["data_files"]:
            assert list(out.glob(f["path"])), f["path"]
    for r in reports:
        assert f"| {r.corpus} | {r.split} | {r.documents} | {r.sentences} | {r.mentions} | {r.representable} |" in card
    assert len(reports) == 5
    report_rows = json.loads((out / "build_report.json").read_text())["rows"]
    assert [(r["corpus"], r["split"]) for r in report_rows] == [(r.corpus, r.split) for r in reports]


# ----------------------------------------------------------------- criterion 5: test overlap and sampling

# SOURCES.md: training documents whose PMID is in BioRED_Test (72 distinct documents).
BIORED_TEST_OVERLAP = {
    "BC5CDR-Disease": 21,
    "BC5CDR-Chemical": 21,
    "NLM-Gene": 21,
    "tmVar3": 24,
    "GNormPlus": 5,
    "NCBI-Disease": 1,
}


@needs_corpora
def test_merged_training_set_leaves_out_biored_test_documents():
    test_ids = {d.id for d in read_pubtator(SHARED / get_corpus("BioRED").splits["test"].path)}
    distinct = set()
    for name in corpora.AIO_TRAINING_CORPORA:
        train = SHARED / get_corpus(name).splits["train"].path
        if train.is_file():
            distinct |= {(train.name, d.id) for d in read_pubtator(train, strict=False) if d.id in test_ids}
    assert len(distinct) == 72
    # sample=2 keeps the test fast: documents are left out before the sample is drawn.
    dd, reports = hf_datasets.merged_dataset(sample=2, seed=0)
    removed = Counter()
    for r in reports:
        removed[r.corpus] += r.test_overlap_removed
        if r.split == "train":
            assert r.documents == 2, r.corpus
    expected = {
        name: BIORED_TEST_OVERLAP.get(name, 0)
        for name in corpora.AIO_TRAINING_CORPORA
        if local_splits(name) and "train" in local_splits(name)
    }
    assert dict(removed) == expected
    assert "NLM-Chem" not in removed  # its training file is not held locally: skipped offline
    for split in ("train", "validation"):
        ids = {i.split("#")[0] for i in dd[split]["document_id"]}
        assert not ids & test_ids
        assert set(dd[split]["task"]) <= set(AIOScheme().tasks)
    assert dd["train"].features["labels"].feature.names == AIOScheme().labels


@needs_corpora
def test_sample_is_deterministic():
    def docs(**kw):
        rows, report = convert_split("BioRED", "train", **kw)
        return [r["id"] for r in rows], report

    a, report = docs(sample=25, seed=7)
    assert report.documents == 25 and a == docs(sample=25, seed=7)[0]
    assert a != docs(sample=25, seed=8)[0]
    full = converted("BioRED", "train")[1].documents  # shared with the round trip
    assert docs(sample=0.1, seed=7)[1].documents == round(full * 0.1)
    assert convert_split("BioRED", "dev", sample=10**6)[1].documents == converted("BioRED", "dev")[1].documents
    dd, reps = hf_datasets.corpus_dataset("BioRED", sample=5, seed=1)
    assert [(r.split, r.documents) for r in reps] == [
        ("train", 5),
        ("dev", converted("BioRED", "dev")[1].documents),
        ("test", 100),
    ]


def test_bc5cdr_tasks_hold_out_the_same_dev_documents():
    """Both BC5CDR tasks read one file: a merged set must not train on a dev document's text."""
    if not (SHARED / get_corpus("BC5CDR-Disease").splits["train"].path).is_file():
        pytest.skip("BC5CDR not available")
    docs = {}
    for name in ("BC5CDR-Disease", "BC5CDR-Chemical"):
        assert get_corpus(name).dev_from_train
        docs[name] = {split: {r["document_id"] for r in converted(name, split)[0]} for split in ("train", "dev")}
    assert docs["BC5CDR-Disease"]["dev"] == docs["BC5CDR-Chemical"]["dev"]
    assert not docs["BC5CDR-Disease"]["dev"] & docs["BC5CDR-Chemical"]["train"]
    assert 0 < len(docs["BC5CDR-Disease"]["dev"]) < 200


# ----------------------------------------------------------------- criterion 4: downloads


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # quiet, but remember what was asked
        self.requests.append(self.path)


@contextmanager
def serving(directory: Path):
    _Handler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def downloading(tmp_path, monkeypatch):
    """An empty corpora folder, an empty cache, downloads allowed despite HF_HUB_OFFLINE."""
    empty, cache = tmp_path / "empty", tmp_path / "dl-cache"
    empty.mkdir()
    monkeypatch.setenv("AIONER_CORPORA", str(empty))
    monkeypatch.setenv("AIONER_CACHE", str(cache))
    monkeypatch.setenv("AIONER_OFFLINE", "0")
    return cache


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@needs_corpora
def test_download_verifies_and_caches(downloading, monkeypatch):
    source = get_corpus("BioRED").splits["test"]
    with serving(SHARED) as (url, requests):
        monkeypatch.setenv("AIONER_CORPORA_MIRROR", url)
        path = fetch(source)
    assert requests == ["/" + source.path]
    assert path == downloading / source.path and sha256_of(path) == source.sha256
    assert files_under(downloading) == [path]  # no partial file left
    # The server is gone: the cache answers.
    assert fetch(source) == path
    rows, report = convert_split("BioRED", "test")
    assert report.mentions == 3535 and report.documents == 100


@needs_corpora
def test_checksum_mismatch_is_refused_and_leaves_nothing(downloading, tmp_path, monkeypatch):
    source = get_corpus("BioRED").splits["test"]
    mirror = tmp_path / "mirror"
    (mirror / "pubtator").mkdir(parents=True)
    data = bytearray((SHARED / source.path).read_bytes())
    data[100] ^= 1
    (mirror / source.path).write_bytes(bytes(data))
    with serving(mirror) as (url, requests):
        monkeypatch.setenv("AIONER_CORPORA_MIRROR", url)
        with pytest.raises(CorpusUnavailableError, match="SHA-256") as err:
            fetch(source)
    assert url in str(err.value) and requests == ["/" + source.path]
    assert files_under(downloading) == []
    # A wrong local copy is refused too.
    monkeypatch.setenv("AIONER_CORPORA", str(mirror))
    with pytest.raises(CorpusUnavailableError, match="SHA-256"):
        fetch(source)


def test_unreachable_server_fails_clearly(downloading, monkeypatch):
    source = get_corpus("BioRED").splits["test"]
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AIONER_CORPORA_MIRROR", url)
    start = time.time()
    with pytest.raises(CorpusUnavailableError) as err:
        fetch(source)
    assert time.time() - start < 10
    assert "could not download pubtator/BioRED_Test.PubTator" in str(err.value) and url in str(err.value)
    assert files_under(downloading) == []
    # A missing file on a live server (404) and a mirror without a scheme fail the same way.
    with serving(downloading.parent / "empty") as (live, _):
        monkeypatch.setenv("AIONER_CORPORA_MIRROR", live)
        with pytest.raises(CorpusUnavailableError, match="404"):
            fetch(source)
    monkeypatch.setenv("AIONER_CORPORA_MIRROR", "127.0.0.1:1")
    with pytest.raises(CorpusUnavailableError, match="could not download"):
        fetch(source)
    assert files_under(downloading) == []


def test_silent_server_times_out(downloading, monkeypatch):
    """A server that accepts and never answers: the timeout, not a hang."""
    source = get_corpus("BioRED").splits["test"]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AIONER_CORPORA_MIRROR", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("AIONER_DOWNLOAD_TIMEOUT", "0.5")
        start = time.time()
        with pytest.raises(CorpusUnavailableError, match="timed out"):
            fetch(source)
        assert time.time() - start < 5
    assert files_under(downloading) == []


@needs_corpora
def test_offline_forbids_downloads(downloading, monkeypatch):
    source = get_corpus("BioRED").splits["test"]
    with serving(SHARED) as (url, requests):
        monkeypatch.setenv("AIONER_CORPORA_MIRROR", url)
        for env in (
            {"AIONER_OFFLINE": "1"},
            {"AIONER_OFFLINE": "", "HF_HUB_OFFLINE": "1"},
            {"AIONER_OFFLINE": "", "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "true"},
        ):
            for k, v in env.items():
                monkeypatch.setenv(k, v)
            with pytest.raises(CorpusUnavailableError, match="downloads are off"):
                fetch(source)
        assert requests == []
        monkeypatch.setenv("AIONER_OFFLINE", "0")  # wins over the Hugging Face variables
        assert fetch(source).is_file() and len(requests) == 1


@needs_corpora
def test_jnlpba_without_train_file_skips_it_offline(monkeypatch, capsys, opened):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Even a mirror that would hang is never contacted.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AIONER_CORPORA_MIRROR", f"http://127.0.0.1:{silent.getsockname()[1]}")
        dd, reports = hf_datasets.corpus_dataset("JNLPBA")
        assert not opened
        assert sorted(dd) == ["test", "validation"]
        assert [r.split for r in reports] == ["devel", "test"]
        assert "JNLPBA/train skipped" in capsys.readouterr().err
        with pytest.raises(CorpusUnavailableError, match="downloads are off"):
            hf_datasets.corpus_dataset("JNLPBA", splits=["train"])
    assert dd["validation"].num_rows == reports[0].sentences == 1739
