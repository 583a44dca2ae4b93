"""CoNLL-style IOB files: one token per line, a blank line between sentences.

Columns are tab-separated when the first token line has a tab (``word TAB tag``, the
MTL-Bioinformatics-2016 ``iob/`` files, AnEM), else whitespace-separated
(``word POS tag``, CoNLL-2003). Every token line must have as many columns as the
first one. ``-DOCSTART-`` lines are not sentences: they set ``doc_start`` on the
next sentence. (JNLPBA has them, 200 in devel and 404 in test; SOURCES.md counts each
as a sentence. The CoNLL-2003 copy in shared/corpora has none.)

AnEM_train.conll wraps every sentence in ``<ALL>`` ... ``</ALL>`` tokens tagged O, an
AIONER input convention; they are not words of the text, so they are stripped
(``strip_wrappers=True``) and AIONER code adds its own.

Tags are O, B-type or I-type; IOB1 and IOB2 are both accepted because an I-X that
does not continue an X entity starts one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from aioner_scheme import spans_from_labels

from .documents import CorpusFormatError, Document, Mention, Passage, iter_lines, open_for_writing, source_name

WRAPPER_TOKENS = ("<ALL>", "</ALL>")
DOCSTART = "-DOCSTART-"
_TAG = re.compile(r"O|[BI]-.+")


@dataclass
class ConllSentence:
    words: list[str]
    tags: list[str]
    line: int  # 1-based line of the first word, words[i] is on line + i (0: not read from a file)
    doc_start: bool = False  # the first sentence after a -DOCSTART- line


def read_conll(
    path_or_file, *, tag_column: int = -1, word_column: int = 0, strip_wrappers: bool = True
) -> Iterator[ConllSentence]:
    """Stream the sentences of an IOB file; CorpusFormatError names file and line."""
    source = source_name(path_or_file)
    words, tags, first, doc_start = [], [], 0, False
    sep, ncols = None, None

    def sentence():
        nonlocal words, tags, doc_start, first
        if strip_wrappers and words and words[0] == WRAPPER_TOKENS[0] and words[-1] == WRAPPER_TOKENS[1]:
            words, tags, first = words[1:-1], tags[1:-1], first + 1  # line stays the first word's
        s = ConllSentence(words, tags, first, doc_start) if words else None
        words, tags = [], []
        if s:
            doc_start = False
        return s

    for lineno, line in iter_lines(path_or_file, source):
        if not line.strip():
            if s := sentence():
                yield s
            continue
        if line.split(None, 1)[0] == DOCSTART:
            if s := sentence():
                yield s
            doc_start = True
            continue
        if ncols is None:
            sep = "\t" if "\t" in line else None
            ncols = len(line.rstrip().split(sep))
        cols = line.rstrip().split(sep)  # a trailing space would otherwise end up in the tag
        if len(cols) != ncols:
            raise CorpusFormatError(
                f"{len(cols)} columns where the file's first token line has {ncols}", path=source, line=lineno
            )
        try:
            word, tag = cols[word_column], cols[tag_column]
        except IndexError:
            raise CorpusFormatError(
                f"no column {word_column} or {tag_column} in a line of {ncols}", path=source, line=lineno
            ) from None
        if not _TAG.fullmatch(tag):
            raise CorpusFormatError(
                f"invalid tag {tag[:40]!r} (expected O, B-type or I-type)", path=source, line=lineno
            )
        if not word.strip():  # e.g. "<TAB>B-Gene": an entity of no characters
            raise CorpusFormatError(f"empty word {word!r} (tag {tag[:40]!r})", path=source, line=lineno)
        if not words:
            first = lineno
        words.append(word)
        tags.append(tag)
    if s := sentence():
        yield s


def iob_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """(first token, last token + 1, type) of each entity in an IOB1 or IOB2 tag sequence.

    Decoded by the scheme's ``spans_from_labels`` (the one BIO decoder: an ``I-X`` that does not
    continue an ``X`` starts one), as tuples for the CoNLL readers and scorers.
    """
    return [(s.start, s.end, s.type) for s in spans_from_labels(tags)]


def conll_to_documents(
    sentences: Iterable[ConllSentence], doc_prefix: str, *, sentences_per_doc: int | None = 1
) -> Iterator[Document]:
    """Documents of sentences joined by single spaces (one Passage, kind "sentence", each).

    Words are joined with single spaces too, so offsets are exact for the joined text.
    A new document starts at every -DOCSTART- and after ``sentences_per_doc`` sentences
    (default 1: one sentence per document, AIONER's training unit; None: whole
    -DOCSTART- sections). Ids are ``f"{doc_prefix}-{n}"``, n counting from 0.
    """
    doc: Document | None = None
    count = 0
    for sent in sentences:
        full = sentences_per_doc is not None and doc is not None and len(doc.passages) >= sentences_per_doc
        if doc is None or sent.doc_start or full:
            if doc is not None:
                yield doc
            doc = Document(f"{doc_prefix}-{count}", [], [])
            count += 1
        offset = doc.passages[-1].end + 1 if doc.passages else 0
        starts, pos = [], offset
        for w in sent.words:
            starts.append(pos)
            pos += len(w) + 1
        text = " ".join(sent.words)
        doc.passages.append(Passage(offset, text, "sentence"))
        for a, b, kind in iob_spans(sent.tags):
            start, end = starts[a], starts[b - 1] + len(sent.words[b - 1])
            doc.mentions.append(Mention(start, end, text[start - offset : end - offset], kind))
    if doc is not None:
        yield doc


def write_conll(sentences: Iterable[ConllSentence], path_or_file, *, sep: str = "\t") -> None:
    """Write ``word<sep>tag`` lines (other columns are not kept), -DOCSTART- before doc_start sentences."""
    f, close = open_for_writing(path_or_file)
    try:
        for s in sentences:
            if s.doc_start:
                f.write(f"{DOCSTART}{sep}O\n\n")
            for w, t in zip(s.words, s.tags, strict=True):
                if not _TAG.fullmatch(t) or sep in w or "\n" in w:
                    raise CorpusFormatError(f"cannot write token {w!r} with tag {t!r}", line=s.line)
                f.write(f"{w}{sep}{t}\n")
            f.write("\n")
    finally:
        if close:
            f.close()
