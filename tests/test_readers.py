"""Readers and writers: real corpora (skipped when shared/corpora is absent) and crafted bad inputs."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataset_scripts.bioc_io import read_bioc, write_bioc_json, write_bioc_xml
from dataset_scripts.conll import ConllSentence, conll_to_documents, iob_spans, read_conll, write_conll
from dataset_scripts.documents import CorpusFormatError, Document, Mention, Passage
from dataset_scripts.pubtator import parse_pubtator_string, read_pubtator, write_pubtator

CORPORA = Path(os.environ.get("AIONER_CORPORA", Path(__file__).resolve().parents[1].parent / "shared" / "corpora"))
PUBTATOR_FILES = sorted((CORPORA / "pubtator").glob("*.PubTator"))
needs_corpora = pytest.mark.skipif(not PUBTATOR_FILES, reason=f"no corpora at {CORPORA}")

# Mention lines of the real files whose text does not match the document at their offsets
# (left out with strict=False). A change here means the reader or the data changed.
KNOWN_PROBLEMS = {
    "BioID_Train_revision": 1,
    "GNormPlus_Test": 4,
    "GNormPlus_Train": 35,
    "NCBIdisease_TrainDev": 1,
    "NLMgene_Train": 11,
    "tmVar3_Train": 21,
}

TITLE_LINE = re.compile(r"^[^\t|]*\|t\|", re.M)
MENTION_LINE = re.compile(r"^[^\t|\n]+\t\d+\t\d+\t", re.M)


def sources_table() -> dict[str, tuple[int, int]]:
    """file stem -> (documents, mention lines) from the table in SOURCES.md."""
    rows = re.findall(r"^\| (\w+)[^|]*\| \d+ \| (\d+)[^|]*\| (\d+) \|$", (CORPORA / "SOURCES.md").read_text(), re.M)
    return {name: (int(docs), int(mentions)) for name, docs, mentions in rows}


# ---------------------------------------------------------------- real PubTator files


@needs_corpora
@pytest.mark.parametrize("path", PUBTATOR_FILES, ids=lambda p: p.stem)
def test_real_pubtator_counts(path):
    raw = path.read_text(encoding="utf-8")
    stream = read_pubtator(path, strict=False)
    docs = list(stream)
    assert len(docs) == len(TITLE_LINE.findall(raw)) == sources_table()[path.stem][0]
    mention_lines = len(MENTION_LINE.findall(raw))
    assert sum(len(d.mentions) for d in docs) == mention_lines - len(stream.problems)
    assert len(stream.problems) == KNOWN_PROBLEMS.get(path.stem, 0)
    for p in stream.problems:
        assert p.path == str(path) and p.line and p.doc_id
        assert "does not match" in p.message or "outside the document" in p.message
    for d in docs:
        d.validate(str(path))
        assert d.text == d.passages[0].text + " " + d.passages[1].text


@needs_corpora
def test_sources_md_mention_counts():
    # SOURCES.md counts Linnaeus_Train lines containing a tab: two abstracts contain tabs.
    table = sources_table()
    for path in PUBTATOR_FILES:
        expected = table[path.stem][1] - (2 if path.stem == "Linnaeus_Train" else 0)
        assert len(MENTION_LINE.findall(path.read_text(encoding="utf-8"))) == expected, path.stem


@needs_corpora
@pytest.mark.parametrize("path", PUBTATOR_FILES, ids=lambda p: p.stem)
def test_real_pubtator_round_trip(path):
    stream = read_pubtator(path, strict=False)
    docs = list(stream)
    out = io.StringIO()
    write_pubtator(docs, out)
    assert parse_pubtator_string(out.getvalue(), strict=True) == docs
    # Byte-exact except for the lines reported as problems, extra blank lines at the end and
    # trailing spaces of annotation lines (one NCBI-disease identifier is 'OMIM:106210 ').
    dropped = {p.line for p in stream.problems}
    lines = path.read_bytes().decode("utf-8").split("\n")
    expected = "\n".join(
        l.rstrip(" ") if MENTION_LINE.match(l) else l for i, l in enumerate(lines, 1) if i not in dropped
    )
    assert out.getvalue() == expected.rstrip("\n") + "\n\n"


@needs_corpora
def test_biored_round_trips_through_bioc(tmp_path):
    path = CORPORA / "pubtator" / "BioRED_Test.PubTator"
    docs = list(read_pubtator(path))
    for write, name in ((write_bioc_xml, "t.xml"), (write_bioc_json, "t.json")):
        write(docs, tmp_path / name)
        back = list(read_bioc(tmp_path / name))
        assert back == docs
        out = io.StringIO()
        write_pubtator(back, out)
        assert out.getvalue() == path.read_text(encoding="utf-8")


@needs_corpora
def test_real_quirks_are_kept():
    # NLM-Chem repeats the PMID for every passage of a full text; GNormPlus has 5-column lines.
    nlmchem = list(read_pubtator(CORPORA / "pubtator" / "NLMchem_Test.PubTator"))
    assert len({d.id for d in nlmchem}) == 50 and all(d.passages[1].text == "" for d in nlmchem)
    gnp = [m for d in read_pubtator(CORPORA / "pubtator" / "GNormPlus_Test.PubTator", strict=False) for m in d.mentions]
    assert {m.type for m in gnp} == {"Gene", "FamilyName", "DomainMotif"}
    assert any(m.identifier is None for m in gnp)


# ---------------------------------------------------------------- PubTator bad input

GOOD = "111|t|First title.\n111|a|Abstract one.\n111\t0\t5\tFirst\tWord\n\n"
BIORED_LIKE = GOOD + ("15485686|t|A novel SCN5B mutation\n15485686|a|Long QT.\n15485686\t8\t13\tSCN5A\tGene\t6331\n\n")


def _write(tmp_path, content: str | bytes, name="BioRED_Test.PubTator") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_mismatch_message_names_file_line_and_document(tmp_path):
    path = _write(tmp_path, BIORED_LIKE)
    with pytest.raises(CorpusFormatError) as exc:
        list(read_pubtator(path))
    assert str(exc.value) == (
        f"{path}, line 7, document 15485686: mention text 'SCN5A' does not match the document text 'SCN5B' at 8-13"
    )
    assert (exc.value.line, exc.value.doc_id) == (7, "15485686")


BAD_PUBTATOR = {
    "offsets outside": (GOOD + "5|t|Ab\n5|a|cd\n5\t3\t9\tb cd\tX\n", 7, "5", "outside"),
    "non-numeric offset": (GOOD + "5|t|Ab\n5|a|cd\n5\t0\t2x\tAb\tX\n", 7, "5", "non-numeric"),
    "abstract before title": (GOOD + "5|a|cd\n5\t0\t2\tcd\tX\n", 5, "5", "without a title"),
    "mention before title": ("5\t0\t2\tAb\tX\n5|t|Ab\n5|a|cd\n", 1, "5", "without a title"),
    "mention of another document": (GOOD + "5|t|Ab\n5|a|cd\n6\t0\t2\tAb\tX\n", 7, "5", "document 6"),
    "missing abstract, mention": (GOOD + "5|t|Ab\n5\t0\t2\tAb\tX\n", 5, "5", "abstract line"),
    "missing abstract, new document": (GOOD + "5|t|Ab\n6|t|Cd\n6|a|\n", 5, "5", "abstract line"),
    "missing abstract at end": (GOOD + "5|t|Ab", 5, "5", "abstract line"),
    "truncated mention": (GOOD + "5|t|Ab\n5|a|cd\n5\t0\t2\tAb\tX\n5\t3\t", 8, "5", "truncated"),
    "truncated relation": (GOOD + "5|t|Ab\n5|a|cd\n5\tCID\tD1", 7, "5", "truncated"),
    "second abstract": (GOOD + "5|t|Ab\n5|a|cd\n5|a|ef\n", 7, "5", "second abstract"),
    "garbage line": (GOOD + "5|t|Ab\n5|a|cd\nhello\n", 7, "5", "unrecognised"),
    "invalid UTF-8": ((GOOD + "5|t|Ab\n5|a|caf\xe9\n").encode("latin-1"), 6, "5", "UTF-8"),
}


@pytest.mark.parametrize("content,line,doc_id,words", BAD_PUBTATOR.values(), ids=BAD_PUBTATOR.keys())
def test_bad_pubtator_raises(tmp_path, content, line, doc_id, words):
    path = _write(tmp_path, content, "bad.PubTator")
    with pytest.raises(CorpusFormatError) as exc:
        list(read_pubtator(path))
    message = str(exc.value)
    assert "bad.PubTator" in message and f"line {line}," in message
    assert f"document {doc_id}:" in message and words in message
    assert (exc.value.line, exc.value.doc_id) == (line, doc_id)


def test_lenient_mode_reports_and_keeps_going(tmp_path):
    path = _write(tmp_path, BIORED_LIKE + "5|t|Ab\n5\t0\t2\tAb\tX\n")
    seen = []
    stream = read_pubtator(path, strict=False, on_problem=seen.append)
    docs = list(stream)
    assert [d.id for d in docs] == ["111", "15485686", "5"]
    assert docs[1].mentions == [] and docs[2].mentions == [Mention(0, 2, "Ab", "X")]
    assert docs[2].passages[1] == Passage(3, "", "abstract")
    assert seen == stream.problems and [(p.line, p.doc_id) for p in seen] == [(7, "15485686"), (9, "5")]
    # invalid UTF-8 stays fatal: the offsets of a wrongly decoded file cannot be trusted
    with pytest.raises(CorpusFormatError):
        list(read_pubtator(_write(tmp_path, b"1|t|\xff\n1|a|\n"), strict=False))


def test_reader_streams(tmp_path):
    stream = read_pubtator(_write(tmp_path, BIORED_LIKE))
    assert next(stream).id == "111"  # the defect later in the file is not read yet
    with pytest.raises(CorpusFormatError):
        next(stream)


def test_crlf_bom_trailing_whitespace_and_missing_final_blank_line(tmp_path):
    text = (
        "1|t|Title with trailing space  \n1|a|Ends with tab\t\n1\t0\t5\tTitle\tX\t\n"
        "1\t28\t32\tEnds\tY\tID:1 \n\n2|t|T\n2|a|"
    )  # no line break at the end
    lf = list(read_pubtator(_write(tmp_path, text, "lf.PubTator")))
    crlf_bom = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")
    assert list(read_pubtator(_write(tmp_path, crlf_bom, "crlf.PubTator"))) == lf
    assert list(read_pubtator(io.BytesIO(crlf_bom))) == lf
    assert lf[0].text == "Title with trailing space   Ends with tab\t"
    assert lf[0].mentions == [Mention(0, 5, "Title", "X", ""), Mention(28, 32, "Ends", "Y", "ID:1")]
    assert [d.id for d in lf] == ["1", "2"] and lf[1].passages[1].text == ""


def test_extra_columns_and_relations_round_trip():
    text = (
        "9|t|Ab cd\n9|a|SCN5A and LQT\n"
        "9\t0\t2\tAb\tGene\t6331\tcolumn7\tcolumn8\n"
        "9\tCID\tD001\tD002\n9\tAssociation\t6331\tD003\tNovel\n\n"
    )
    docs = parse_pubtator_string(text)
    assert docs[0].mentions[0].extra == ("column7", "column8")
    assert docs[0].infons["relations"] == [["CID", "D001", "D002"], ["Association", "6331", "D003", "Novel"]]
    out = io.StringIO()
    write_pubtator(docs, out)
    assert out.getvalue() == text


UNICODE = "1|t|Αβ-42 😀 and café\u0301 in naïve cells 🧬\n1|a|Ω-3 fatty acids; ǅ e\u0301\u0327 and 𝛼-synuclein 🙂.\n"


def _unicode_doc() -> Document:
    docs = parse_pubtator_string(UNICODE)
    text = docs[0].text
    for word, kind in (
        ("Αβ-42", "Protein"),
        ("😀", "Emoji"),
        ("café\u0301", "Drink"),
        ("🧬", "Emoji"),
        ("Ω-3 fatty acids", "Chemical"),
        ("e\u0301\u0327", "Mark"),
        ("𝛼-synuclein", "Protein"),
    ):
        start = text.index(word)  # code points: the emoji before "café" counts as one
        docs[0].mentions.append(Mention(start, start + len(word), word, kind, "id"))
    return docs[0]


def test_unicode_round_trip(tmp_path):
    doc = _unicode_doc()
    assert doc.text.index("café") == 12 and doc.mentions[2].start == 12
    out = io.StringIO()
    write_pubtator([doc], out)
    path = _write(tmp_path, out.getvalue(), "u.PubTator")
    assert list(read_pubtator(path)) == [doc]
    for write, name in ((write_bioc_xml, "u.xml"), (write_bioc_json, "u.json")):
        write([doc], tmp_path / name)
        back = list(read_bioc(tmp_path / name))
        assert back == [doc]
        assert all(back[0].text[m.start : m.end] == m.text for m in back[0].mentions)


# Any text XML 1.0 can hold and PubTator's line format allows: no control characters.
_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn", "Co")), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=_TEXT, abstract=_TEXT, cuts=st.lists(st.tuples(st.integers(0, 90), st.integers(1, 8)), max_size=6))
def test_random_documents_round_trip(tmp_path, title, abstract, cuts):
    text = f"{title} {abstract}"
    # BioC yields mentions passage by passage (see bioc_io), so draw them in passage order.
    mentions = [
        Mention(a, a + n, text[a : a + n], "T", str(i))
        for i, (a, n) in enumerate(sorted(cuts))
        if a + n <= len(text) and (a + n <= len(title) or a > len(title))
    ]
    doc = Document("123", [Passage(0, title, "title"), Passage(len(title) + 1, abstract, "abstract")], mentions)
    out = io.StringIO()
    write_pubtator([doc], out)
    assert parse_pubtator_string(out.getvalue()) == [doc]
    write_bioc_xml([doc], tmp_path / "r.xml")
    write_bioc_json([doc], tmp_path / "r.json")
    assert list(read_bioc(tmp_path / "r.xml")) == list(read_bioc(tmp_path / "r.json")) == [doc]


def test_writer_rejects_what_pubtator_cannot_hold():
    doc = Document("1", [Passage(0, "line\nbreak")], [])
    with pytest.raises(CorpusFormatError, match="line breaks"):
        write_pubtator([doc], io.StringIO())
    doc = Document("1", [Passage(0, "ab")], [Mention(0, 2, "a\tb", "X")])
    with pytest.raises(CorpusFormatError, match="tab"):
        write_pubtator([doc], io.StringIO())


def test_validate():
    doc = Document("7", [Passage(0, "abc"), Passage(4, "def")], [Mention(4, 7, "def", "X")])
    doc.validate()
    assert doc.text == "abc def"
    doc.mentions.append(Mention(5, 9, "ef", "X"))
    with pytest.raises(CorpusFormatError, match="f.txt, document 7: mention offsets 5-9"):
        doc.validate("f.txt")
    doc.mentions[-1] = Mention(4, 6, "dx", "X")
    with pytest.raises(CorpusFormatError, match="'dx' does not match the document text 'de' at 4-6"):
        doc.validate()
    with pytest.raises(CorpusFormatError, match="overlaps"):
        Document("8", [Passage(0, "abc"), Passage(2, "x")], []).validate()


# ---------------------------------------------------------------- BioC


def _bioc_xml(annotations: str, passages: str | None = None) -> str:
    passages = passages or (
        "<passage><infon key='type'>title</infon><offset>0</offset><text>Hello world</text>"
        + annotations
        + "</passage>"
        "<passage><infon key='type'>paragraph</infon><offset>12</offset><text>Second one</text></passage>"
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><collection><source/><date/><key/>"
        f"<document><id>D1</id>{passages}</document></collection>"
    )


def _ann(offsets, text, ident="T1"):
    locs = "".join(f"<location offset='{o}' length='{n}'/>" for o, n in offsets)
    return (
        f"<annotation id='{ident}'><infon key='type'>Gene</infon>"
        f"<infon key='identifier'>42</infon>{locs}<text>{text}</text></annotation>"
    )


def test_bioc_maps_passages_and_annotations(tmp_path):
    path = _write(tmp_path, _bioc_xml(_ann([(6, 5)], "world")), "ok.xml")
    [doc] = read_bioc(path)
    assert doc.passages == [Passage(0, "Hello world", "title"), Passage(12, "Second one", "paragraph")]
    assert doc.mentions == [Mention(6, 11, "world", "Gene", "42")]
    # touching pieces of one span are merged
    [doc] = read_bioc(_write(tmp_path, _bioc_xml(_ann([(6, 2), (8, 3)], "world")), "pieces.xml"))
    assert doc.mentions == [Mention(6, 11, "world", "Gene", "42")]
    # a passage made of sentences gets its text from them
    sentences = (
        "<passage><offset>0</offset><sentence><offset>0</offset><text>One.</text>"
        + _ann([(0, 3)], "One")
        + "</sentence><sentence><offset>5</offset><text>Two.</text>"
        "</sentence></passage>"
    )
    [doc] = read_bioc(_write(tmp_path, _bioc_xml("", sentences), "sent.xml"))
    assert doc.text == "One. Two." and doc.mentions[0].text == "One"


BAD_BIOC = {
    "outside passage": (_bioc_xml(_ann([(6, 10)], "world Seco")), "outside its passage"),
    "text mismatch": (_bioc_xml(_ann([(6, 5)], "World")), "does not match"),
    "discontinuous": (_bioc_xml(_ann([(0, 2), (6, 5)], "He world")), "discontinuous"),
    "overlapping passages": (
        _bioc_xml(
            "",
            "<passage><offset>0</offset><text>abc</text></passage><passage><offset>2</offset><text>x</text></passage>",
        ),
        "overlaps",
    ),
}


@pytest.mark.parametrize("content,words", BAD_BIOC.values(), ids=BAD_BIOC.keys())
def test_bad_bioc_raises(tmp_path, content, words):
    path = _write(tmp_path, content, "bad.xml")
    with pytest.raises(CorpusFormatError) as exc:
        list(read_bioc(path))
    assert "bad.xml" in str(exc.value) and "document D1" in str(exc.value) and words in str(exc.value)
    stream = read_bioc(path, strict=False)
    assert len(list(stream)) == (0 if words == "overlaps" else 1)  # bad passages: whole document out
    assert len(stream.problems) == 1


@pytest.mark.parametrize(
    "content",
    ["PMID|t|not bioc\n", "<collection><document>", '{"source": 1}', b"\xff\xfe<\x00"],
    ids=["text", "broken XML", "not BioC JSON", "UTF-16"],
)
def test_not_bioc_raises(tmp_path, content):
    with pytest.raises(CorpusFormatError, match="nope.bioc"):
        read_bioc(_write(tmp_path, content, "nope.bioc"))


def test_bioc_xml_cannot_hold_control_characters(tmp_path):
    doc = Document("C1", [Passage(0, "bell \x07")], [])
    with pytest.raises(CorpusFormatError, match="document C1"):
        write_bioc_xml([doc], tmp_path / "c.xml")
    write_bioc_json([doc], tmp_path / "c.json")
    assert list(read_bioc(tmp_path / "c.json")) == [doc]


# ---------------------------------------------------------------- CoNLL

# Sentence counts from SOURCES.md (JNLPBA: SOURCES.md counts each -DOCSTART- as a sentence).
CONLL_COUNTS = {
    "general/conll2003/train.txt": 14041,
    "general/conll2003/dev.txt": 3250,
    "general/conll2003/test.txt": 3453,
    **{
        f"iob/{name}/{split}.tsv": n
        for name, counts in {
            "NCBI-disease-IOB": (5424, 923, 940),
            "BC5CDR-chem-IOB": (4560, 4581, 4797),
            "BC5CDR-disease-IOB": (4560, 4581, 4797),
            "linnaeus-IOB": (11935, 4078, 7142),
            "JNLPBA": (None, 1939, 4260),
            "AnatEM-IOB": (5861, 2118, 3830),
            "BioNLP13CG-IOB": (3033, 1003, 1906),
        }.items()
        for split, n in zip(("train", "devel", "test"), counts)
        if n is not None
    },
    "conll/AnEM_train.conll": 2815,
}


@needs_corpora
@pytest.mark.parametrize("rel,expected", CONLL_COUNTS.items(), ids=CONLL_COUNTS.keys())
def test_conll_sentence_counts_and_documents(rel, expected):
    sentences = list(read_conll(CORPORA / rel))
    docstarts = sum(s.doc_start for s in sentences)
    assert len(sentences) + docstarts == expected
    assert docstarts == {"iob/JNLPBA/devel.tsv": 200, "iob/JNLPBA/test.tsv": 404}.get(rel, 0)
    assert all(s.words and len(s.words) == len(s.tags) for s in sentences)
    assert not any(w in ("<ALL>", "</ALL>") for s in sentences for w in s.words)
    docs = list(conll_to_documents(sentences, "x"))
    assert len(docs) == len(sentences)
    n_mentions = 0
    for doc in docs:
        for m in doc.mentions:
            assert doc.text[m.start : m.end] == m.text
        n_mentions += len(doc.mentions)
    assert n_mentions == sum(t.startswith("B-") for s in sentences for t in s.tags)  # all IOB2


@needs_corpora
def test_anem_wrappers_and_docstart_grouping():
    path = CORPORA / "conll/AnEM_train.conll"
    raw = list(read_conll(path, strip_wrappers=False))
    assert all(s.words[0] == "<ALL>" and s.words[-1] == "</ALL>" for s in raw)
    stripped = list(read_conll(path))
    lines = path.read_text(encoding="utf-8").split("\n")
    assert all(
        lines[s.line - 1 + i].split("\t")[0] == w  # words[i] is on line + i
        for s in stripped[:50]
        for i, w in enumerate(s.words)
    )
    sections = list(conll_to_documents(read_conll(CORPORA / "iob/JNLPBA/devel.tsv"), "jnlpba", sentences_per_doc=None))
    assert len(sections) == 200 and sections[0].id == "jnlpba-0"


def test_iob1_and_iob2_spans():
    assert iob_spans(["I-X", "I-X", "B-X", "O", "I-Y", "I-X", "B-Y", "I-Y"]) == [
        (0, 2, "X"),
        (2, 3, "X"),
        (4, 5, "Y"),
        (5, 6, "X"),
        (6, 8, "Y"),
    ]


def test_conll_documents_and_write_round_trip(tmp_path):
    text = (
        "-DOCSTART- -X- -X- O\n\nEU NNP B-ORG\nrejects VBZ O\nGerman JJ I-MISC\n\n"
        "Peter NNP B-PER\nBlackburn NNP I-PER\n\n-DOCSTART- -X- -X- O\n\nBRUSSELS NNP B-LOC\n"
    )
    sentences = list(read_conll(_write(tmp_path, text, "c.txt")))
    assert [s.line for s in sentences] == [3, 7, 12]
    assert [s.doc_start for s in sentences] == [True, False, True]
    docs = list(conll_to_documents(sentences, "c", sentences_per_doc=None))
    assert [d.text for d in docs] == ["EU rejects German Peter Blackburn", "BRUSSELS"]
    assert [(m.start, m.end, m.text, m.type) for m in docs[0].mentions] == [
        (0, 2, "EU", "ORG"),
        (11, 17, "German", "MISC"),
        (18, 33, "Peter Blackburn", "PER"),
    ]
    write_conll(sentences, tmp_path / "out.tsv")
    back = list(read_conll(tmp_path / "out.tsv"))
    key = lambda s: (s.words, s.tags, s.doc_start)  # noqa: E731
    assert [key(s) for s in back] == [key(s) for s in sentences]
    pairs = list(conll_to_documents([ConllSentence(["a"], ["O"], 0)] * 3, "n", sentences_per_doc=2))
    assert [d.text for d in pairs] == ["a a", "a"]


BAD_CONLL = {
    "wrong column count": ("EU\tB-ORG\nrejects\tO\n\nPeter\tB-PER\tX\n", 4, "columns"),
    "invalid tag": ("EU\tB-ORG \nrejects\tE-ORG\n", 2, "invalid tag"),
    "bare B": ("EU\tB-\n", 1, "invalid tag"),
    "invalid UTF-8": ("EU\tB-ORG\ncaf\xe9\tO\n".encode("latin-1"), 2, "UTF-8"),
}


@pytest.mark.parametrize("content,line,words", BAD_CONLL.values(), ids=BAD_CONLL.keys())
def test_bad_conll_raises(tmp_path, content, line, words):
    with pytest.raises(CorpusFormatError) as exc:
        list(read_conll(_write(tmp_path, content, "bad.tsv")))
    assert "bad.tsv" in str(exc.value) and f"line {line}:" in str(exc.value) and words in str(exc.value)
    assert exc.value.line == line
