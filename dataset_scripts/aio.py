"""Documents -> AIO sentences: words with character spans and AIO labels, plus a build report.

Per document: raw types are mapped to the corpus' AIO task (a raw type the corpus
registry does not know is an error), the declared corpus fixes are applied
(BioID: a trailing "cell"/"cells" leaves the cell-line span), overlapping or
nested mentions of the task keep the longest span, and the text is split into
sentences and words with a forced word boundary at every mention boundary and no
sentence boundary inside a mention. Every count that explains a difference
between the file and the dataset goes into a ``SplitReport``: for a PubTator split,
``mentions + sum(ignored_types) + overlap_dropped + duplicates_merged`` plus the
reader problems about annotation lines equals the annotation lines of its documents
(``representable`` of those ``mentions`` are in the rows; all of them on these corpora).

Reader problems (strict=False, the default: a mention line whose text does not match
the document, offsets outside it, a non-numeric offset, a truncated line, lines with no
title line before them) are counted in the report of the split their document goes
to, and the offending line is left out. ``strict=True`` raises them instead. A file
in another encoding and a raw type the registry does not know always raise, naming
file, line and document.

Row ids: ``document_id`` is the file's document id (the PMID), except where a file
repeats an id (NLM-Chem has one block per passage, each with offsets from 0;
NCBIdisease_TrainDev holds PMID 8528200 twice): each block is then its own document
``PMID#k`` (k: 1-based occurrence in the file), so that the offsets of one
``document_id`` never collide and ``id`` (corpus:document_id:offset) is unique.
"""

from __future__ import annotations

import hashlib
import random
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from aioner_scheme import AIOScheme, Span, default_tasks, spans_from_labels
from aioner_text import segment

from .conll import ConllSentence, iob_spans, read_conll
from .corpora import CORPORA, Corpus, CorpusUnavailableError, fetch, get_corpus
from .documents import CorpusFormatError, Document, Mention, Passage
from .pubtator import read_pubtator

# Document.infons keys set by read_documents (PubTator): the reader problems found inside
# the document, and its document_id in the rows when the file repeats its id.
PROBLEMS_KEY = "reader_problems"
DATASET_ID_KEY = "dataset_id"

_CELL_SUFFIX = re.compile(r"[\s-]+cells?$", re.IGNORECASE)
DEV_SHARE = 10  # one document in ten goes to dev when a corpus has no dev file


@dataclass
class SplitReport:
    corpus: str
    split: str
    documents: int = 0
    sentences: int = 0
    mentions: int = 0  # gold mentions of the task after type mapping and fixes
    representable: int = 0
    overlap_dropped: int = 0
    test_overlap_removed: int = 0
    duplicates_merged: int = 0
    suffix_fixed: int = 0
    ignored_types: Counter = field(default_factory=Counter)
    reader_problems: list[str] = field(default_factory=list)
    not_representable: list[str] = field(default_factory=list)

    def row(self) -> dict:
        return {
            "corpus": self.corpus,
            "split": self.split,
            "documents": self.documents,
            "sentences": self.sentences,
            "mentions": self.mentions,
            "representable": self.representable,
            "overlap_dropped": self.overlap_dropped,
            "test_overlap_removed": self.test_overlap_removed,
            "duplicates_merged": self.duplicates_merged,
            "suffix_fixed": self.suffix_fixed,
            "ignored_types": dict(self.ignored_types),
            "reader_problems": self.reader_problems,
            "not_representable": self.not_representable,
        }


def scheme_for(corpus: Corpus) -> AIOScheme:
    """The six-type AIO scheme for the AIONER corpora; a scheme of its own for any other set."""
    if (
        corpus.group == "aio"
        or set(corpus.entity_types) <= set(default_tasks()["ALL"])
        and corpus.task in default_tasks()
    ):
        return AIOScheme()
    return AIOScheme({corpus.task: corpus.entity_types})


# ----- mentions of one document -----
def task_mentions(doc: Document, corpus: Corpus, report: SplitReport, source: str) -> list[Mention]:
    """The document's mentions for the corpus' task: mapped, fixed, de-duplicated, non-overlapping."""
    kept = []
    for m in doc.mentions:
        if m.type not in corpus.types:
            raise CorpusFormatError(
                f"unknown raw type {m.type!r} for corpus {corpus.name} (known: {sorted(corpus.types)}); "
                "add it to the corpus' types in dataset_scripts/corpora.py",
                path=source,
                line=m.line,
                doc_id=doc.id,
            )
        aio_type = corpus.types[m.type]
        if aio_type is None:
            report.ignored_types[m.type] += 1
            continue
        m = Mention(m.start, m.end, m.text, aio_type, m.identifier)
        if "strip_cell_suffix" in corpus.fixes:
            cut = _CELL_SUFFIX.search(m.text)
            if cut and cut.start() > 0:
                m = Mention(m.start, m.start + cut.start(), m.text[: cut.start()], m.type, m.identifier)
                report.suffix_fixed += 1
        kept.append(m)
    unique = {(m.start, m.end, m.type): m for m in kept}
    report.duplicates_merged += len(kept) - len(unique)
    # Longest first (then leftmost): a nested or overlapping shorter mention is dropped.
    chosen: list[Mention] = []
    for m in sorted(unique.values(), key=lambda m: (m.start - m.end, m.start)):
        if all(m.end <= c.start or m.start >= c.end for c in chosen):
            chosen.append(m)
        else:
            report.overlap_dropped += 1
    return sorted(chosen, key=lambda m: m.start)


def document_rows(
    doc: Document, mentions: list[Mention], corpus: Corpus, scheme: AIOScheme, report: SplitReport
) -> list[dict]:
    """One row per sentence: words, their character spans and AIO labels."""
    text = doc.text
    doc_id = dataset_id(doc)
    cuts = sorted({p for m in mentions for p in (m.start, m.end)})
    spans = [(m.start, m.end) for m in mentions]
    sentences = []
    for passage in doc.passages:
        if passage.text.strip():
            sentences.extend(
                segment(passage.text, passage.offset, [c for c in cuts if passage.offset < c < passage.end], spans)
            )
    starts = [s[0][0] for s in sentences]
    per_sentence: list[list[Span]] = [[] for _ in sentences]
    for m in mentions:
        k = bisect_left(starts, m.start + 1) - 1  # the sentence starting at or before the mention
        words = sentences[k] if k >= 0 else []
        first = next((i for i, w in enumerate(words) if w[0] == m.start), None)
        last = next((i for i, w in enumerate(words) if w[1] == m.end), None)
        if first is None or last is None or last < first:
            report.not_representable.append(f"{doc_id} {m.start}-{m.end} {m.type} {m.text!r}")
            continue
        per_sentence[k].append(Span(first, last + 1, m.type))
        report.representable += 1
    rows = []
    for k, (words, ents) in enumerate(zip(sentences, per_sentence)):
        start, end = words[0][0], words[-1][1]
        rows.append(
            {
                "id": f"{corpus.name}:{doc_id}:{start}",
                "document_id": doc_id,
                "corpus": corpus.name,
                "task": corpus.task,
                "text": text[start:end],
                "offset": start,
                "tokens": [text[a:b] for a, b in words],
                "token_spans": [[a, b] for a, b in words],
                "labels": scheme.encode(len(words), ents, corpus.task),
            }
        )
    return rows


# ----- IOB sentences -----
def conll_rows(
    sentences: Iterable[ConllSentence], corpus: Corpus, split: str, scheme: AIOScheme, report: SplitReport, source: str
) -> list[dict]:
    """Pre-tokenized sentences keep their words; each sentence is its own document."""
    rows = []
    for n, sent in enumerate(sentences):
        ents = []
        for a, b, raw in iob_spans(sent.tags):
            if raw not in corpus.types:
                raise CorpusFormatError(
                    f"unknown entity type {raw!r} for corpus {corpus.name}", path=source, line=sent.line + a
                )
            if corpus.types[raw] is None:
                report.ignored_types[raw] += 1
                continue
            ents.append(Span(a, b, corpus.types[raw]))
        report.mentions += len(ents)
        report.representable += len(ents)
        spans, pos = [], 0
        for w in sent.words:
            spans.append([pos, pos + len(w)])
            pos += len(w) + 1
        doc_id = f"{split}-{n}"
        rows.append(
            {
                "id": f"{corpus.name}:{doc_id}",
                "document_id": doc_id,
                "corpus": corpus.name,
                "task": corpus.task,
                "text": " ".join(sent.words),
                "offset": 0,
                "tokens": list(sent.words),
                "token_spans": spans,
                "labels": scheme.encode(len(sent.words), ents, corpus.task),
            }
        )
    report.documents = report.sentences = len(rows)
    return rows


# ----- whole splits -----
def in_dev(corpus: str, doc_id: str) -> bool:
    """The fixed hold-out of corpora without a dev file (stable across runs and machines).

    ``corpus`` is the hold-out key; the conversion passes the training file's relative
    path, so that corpora read from one file (BC5CDR's Disease and Chemical tasks) hold
    out the same documents and the merged set never trains on a dev document's text.
    """
    return int(hashlib.md5(f"{corpus}:{doc_id}".encode()).hexdigest(), 16) % DEV_SHARE == 0


def dataset_id(doc: Document) -> str:
    """The document's ``document_id`` in the rows (``PMID#k`` where the file repeats the id)."""
    return doc.infons.get(DATASET_ID_KEY, doc.id)


def _source_split(corpus: Corpus, split: str) -> str:
    return "train" if corpus.dev_from_train and split in ("train", "dev") else split


def read_split(corpus: Corpus, split: str, strict: bool) -> tuple[list[Document], str, list[CorpusFormatError]]:
    """The split's documents, the file read, and the reader problems tied to no document of it.

    Problems found inside a document are kept with it (``infons[PROBLEMS_KEY]``), so that
    they follow it into the train or dev share, out with excluded documents, or out of a
    sample. The others (lines before any title line, a line naming a document other than
    the current one) go to the split their document id would go to.
    """
    source_split = _source_split(corpus, split)
    if source_split not in corpus.splits:
        raise KeyError(f"corpus {corpus.name} has no split {split!r} (splits: {sorted(corpus.splits)})")
    path = fetch(corpus.splits[source_split])
    orphans: list[CorpusFormatError] = []
    if corpus.format == "pubtator":
        stream = read_pubtator(path, strict=strict)
        docs, seen = [], 0
        for doc in stream:  # a document's problems are reported before it is yielded
            new, seen = stream.problems[seen:], len(stream.problems)
            doc.infons[PROBLEMS_KEY] = [p for p in new if p.doc_id == doc.id]
            orphans += [p for p in new if p.doc_id != doc.id]
            docs.append(doc)
        orphans += stream.problems[seen:]
        counts = Counter(d.id for d in docs)
        occurrence: Counter = Counter()
        for d in docs:
            if counts[d.id] > 1:
                occurrence[d.id] += 1
                d.infons[DATASET_ID_KEY] = f"{d.id}#{occurrence[d.id]}"
    else:
        col = {"conll2003": -1, "iob": -1, "conll": -1}[corpus.format]
        sentences = list(read_conll(path, tag_column=col))
        docs = [
            Document(f"{source_split}-{i}", [Passage(0, " ".join(s.words), "sentence")], [], {"conll": s})
            for i, s in enumerate(sentences)
        ]
    if corpus.dev_from_train and split in ("train", "dev"):
        key = corpus.splits[source_split].path
        docs = [d for d in docs if in_dev(key, d.id) == (split == "dev")]
        orphans = [p for p in orphans if (p.doc_id is not None and in_dev(key, p.doc_id)) == (split == "dev")]
    return docs, str(path), orphans


def _problems(docs: Iterable[Document], orphans: Iterable[CorpusFormatError]) -> list[str]:
    found = [*orphans, *(p for d in docs for p in d.infons.get(PROBLEMS_KEY, ()))]
    return [str(p) for p in sorted(found, key=lambda p: p.line or 0)]


def read_documents(
    corpus: Corpus, split: str, report: SplitReport, *, strict: bool = False
) -> tuple[list[Document], str]:
    """The documents of a corpus split and the path read; reader problems go into ``report``."""
    docs, path, orphans = read_split(corpus, split, strict)
    report.reader_problems = _problems(docs, orphans)
    return docs, path


def convert_split(
    corpus: Corpus | str,
    split: str,
    *,
    scheme: AIOScheme | None = None,
    exclude_ids: set[str] = frozenset(),
    sample: float | int | None = None,
    seed: int = 0,
    strict: bool = False,
) -> tuple[list[dict], SplitReport]:
    """Rows of one corpus split, and its report.

    ``exclude_ids``: document ids to leave out (documents of an evaluated test set).
    ``sample``: a fraction (< 1) or a count (>= 1) of documents, drawn with ``seed``.
    ``strict``: raise on the first malformed line instead of counting it in the report
    and leaving it out.
    """
    corpus = get_corpus(corpus) if isinstance(corpus, str) else corpus
    scheme = scheme or scheme_for(corpus)
    report = SplitReport(corpus.name, split)
    docs, source, orphans = read_split(corpus, split, strict)
    kept = [d for d in docs if d.id not in exclude_ids]
    report.test_overlap_removed = len(docs) - len(kept)
    docs = sample_documents(kept, sample, seed)
    report.reader_problems = _problems(docs, orphans)
    if corpus.format != "pubtator":
        return conll_rows([d.infons["conll"] for d in docs], corpus, split, scheme, report, source), report
    rows = []
    for doc in docs:
        mentions = task_mentions(doc, corpus, report, source)
        report.mentions += len(mentions)
        rows.extend(document_rows(doc, mentions, corpus, scheme, report))
    report.documents = len(docs)
    report.sentences = len(rows)
    return rows, report


def sample_documents(docs: list, sample: float | int | None, seed: int) -> list:
    """A fraction (``sample`` < 1) or a count (>= 1) of ``docs`` drawn with ``seed``, in their
    original order; all of them when ``sample`` is None."""
    if sample is None:
        return docs
    n = round(len(docs) * sample) if sample < 1 else min(int(sample), len(docs))
    picked = sorted(random.Random(seed).sample(range(len(docs)), n))
    return [docs[i] for i in picked]


def document_ids_of_tests(
    corpora: Iterable[str] | None = None, *, local_only: bool = False, files: dict[str, bool] | None = None
) -> set[str]:
    """Ids of every document in the test splits of ``corpora`` (None: every registered corpus).

    (Not named ``test_*``: pytest would collect it from any test module that imports it.)
    A test file shared by several corpora (BC5CDR's two tasks) is read once. ``local_only``:
    a test file that is in neither the corpora folder nor the cache is skipped instead of
    downloaded. ``files``, when given, receives each test file's path and whether it was
    read, so that a caller can say exactly which test sets were checked.
    """
    files = {} if files is None else files
    ids: set[str] = set()
    for name in CORPORA if corpora is None else corpora:
        corpus = get_corpus(name)
        source = corpus.splits.get("test")
        if source is None or corpus.format != "pubtator" or source.path in files:
            continue
        try:
            path = fetch(source, allow_download=not local_only)
        except CorpusUnavailableError:
            if not local_only:
                raise
            files[source.path] = False
            continue
        ids.update(d.id for d in read_pubtator(path, strict=False))
        files[source.path] = True
    return ids


# ----- back to documents -----
def rows_to_documents(rows: Iterable[dict], label_names: list[str]) -> Iterator[Document]:
    """Rebuild documents (text of the covered sentences, gold mentions) from dataset rows."""
    by_doc: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by_doc.setdefault((row["corpus"], row["document_id"]), []).append(row)
    for (_, doc_id), doc_rows in by_doc.items():
        passages, mentions = [], []
        for row in sorted(doc_rows, key=lambda r: r["offset"]):
            passages.append(Passage(row["offset"], row["text"], "sentence"))
            for span in spans_from_labels([label_names[i] for i in row["labels"]]):
                a, b = row["token_spans"][span.start][0], row["token_spans"][span.end - 1][1]
                mentions.append(Mention(a, b, row["text"][a - row["offset"] : b - row["offset"]], span.type))
        yield Document(doc_id, passages, mentions)
