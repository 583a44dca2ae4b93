"""PubTator reader and writer.

Format, one document per block, blocks separated by a blank line::

    PMID|t|title
    PMID|a|abstract                      (may be empty: ``PMID|a|``)
    PMID<TAB>start<TAB>end<TAB>text<TAB>type[<TAB>identifier[<TAB>more...]]
    PMID<TAB>RelationType<TAB>id1<TAB>id2[<TAB>...]     (relations, e.g. BC5CDR CID, BioRED)

The title is passage 0 at offset 0 and the abstract passage 1 at offset len(title) + 1,
so ``doc.text == title + " " + abstract``. Offsets are code points (checked on every
non-ASCII corpus here, e.g. NLM-Chem). Title and abstract are kept byte for byte,
trailing spaces and tabs included: offsets count them.

Leniency and errors:
* a ``|t|`` line always starts a new document, even without a blank line before it;
  document ids need not be unique (NLM-Chem repeats the PMID for every passage);
* relation lines (second column a word starting with a letter, where a mention has its
  start offset) go to ``doc.infons["relations"]`` as lists of the columns after the PMID
  (none of the files in shared/corpora has any: AIONER stripped them);
* a document without its ``|a|`` line is an error; with strict=False it is reported
  and read with an empty abstract;
* every other defect (mention text differing from the document text, offsets outside
  it, non-numeric offsets (ASCII digits, at most 18), too few columns as in a truncated
  last line, a line of another document, lines before any title, lines separated by a
  lone CR) raises CorpusFormatError naming file,
  line and document. With strict=False the defect is reported (``stream.problems`` /
  ``on_problem``) and the offending line is left out; the document is still produced;
* invalid UTF-8 (a file in another encoding) is always raised, even with strict=False.

Trailing spaces of annotation lines are dropped: they would end up in identifiers
(NCBIdisease_TrainDev has one 'OMIM:106210 '). A "\r" inside a title or abstract is text
(written back as is); at the end of a line it is part of the line ending.

Round trip: ``write_pubtator(read_pubtator(f))`` reproduces the files in
shared/corpora byte for byte except for lines left out as problems, Linnaeus_Test's
extra blank line at the end and that one trailing space; reading the output again
gives identical Documents for every file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable

from .documents import (
    CorpusFormatError,
    Document,
    DocumentStream,
    Mention,
    Passage,
    iter_lines,
    mention_problem,
    open_for_writing,
    source_name,
)

_TEXT_LINE = re.compile(r"([^\t|\r]*)\|([ta])\|(.*)", re.DOTALL)
_CR_LINES = re.compile(r"\r[^\t|\r]*\|[ta]\|")  # a title/abstract line after a lone CR
_INT = re.compile(r"-?[0-9]+")  # ASCII digits only: int() would also take "٣" (and fail past 4300 digits)
_MAX_DIGITS = 18
_RELATION_TYPE = re.compile(r"[A-Za-z][\w-]*")
_ID = re.compile(r"(?!\ufeff)[^\t|\n\r]*")  # what reads back as the same id


def _doc_id_of(line: str) -> str | None:
    """The PMID a line starts with, for messages about lines that could not be parsed."""
    m = re.match(r"[^\t|]{1,100}(?=[\t|])", line)  # an id is followed by a separator (not a whole line)
    return m.group() if m else None


def read_pubtator(
    path_or_file, *, strict: bool = True, on_problem: Callable[[CorpusFormatError], None] | None = None
) -> DocumentStream:
    """Stream Documents from a PubTator file (a path or a binary/text file object)."""
    source = source_name(path_or_file)
    return DocumentStream(
        lambda report: _parse(iter_lines(path_or_file, source, _doc_id_of), source, report),
        strict=strict,
        on_problem=on_problem,
    )


def parse_pubtator_string(s: str, source: str = "<string>", *, strict: bool = True, on_problem=None) -> list[Document]:
    # StringIO splits on "\n" only, so a stray "\r" or U+2028 inside a title stays text.
    stream = DocumentStream(
        lambda report: _parse(iter_lines(io.StringIO(s), source, _doc_id_of), source, report),
        strict=strict,
        on_problem=on_problem,
    )
    return list(stream)


class _Pending:
    """A document being read; turned into a Document at its end."""

    def __init__(self, doc_id: str, title: str, line: int):
        self.id, self.title, self.line = doc_id, title, line
        self.abstract: str | None = None
        self.mentions: list[Mention] = []
        self.relations: list[list[str]] = []
        self._text: str | None = None

    def text(self) -> str:  # built once: a full text with thousands of mentions is not copied per mention
        if self._text is None:
            self._text = f"{self.title} {self.abstract}"
        return self._text


def _parse(lines, source: str, report):
    doc: _Pending | None = None

    def error(message, line, doc_id=None, skipped=False):
        report(
            CorpusFormatError(
                message,
                path=source,
                line=line,
                doc_id=doc_id if doc_id is not None else doc and doc.id,
                skipped=skipped,
            )
        )

    def finish(d: _Pending) -> Document:
        if d.abstract is None:
            _missing_abstract(d, error)
        title = Passage(0, d.title, "title")
        abstract = Passage(len(d.title) + 1, d.abstract, "abstract")
        return Document(d.id, [title, abstract], d.mentions, {"relations": d.relations} if d.relations else {})

    for lineno, line in lines:
        if not line.strip():
            if doc is not None:
                yield finish(doc)
            doc = None
            continue
        if _CR_LINES.search(line):
            head = _TEXT_LINE.match(line)  # the id of the title line the CRs glued the rest to ("" is one)
            error(
                "lines end in a lone carriage return (CR): convert the file to LF or CRLF line endings",
                lineno,
                (head.group(1) if head else _doc_id_of(line)) if doc is None else None,
                skipped=True,
            )
            continue
        text_line = _TEXT_LINE.fullmatch(line)
        if text_line:
            doc_id, kind, content = text_line.groups()
            if kind == "t":
                if doc is not None:  # no blank line before this title
                    yield finish(doc)
                doc = _Pending(doc_id, content, lineno)
            elif doc is None:
                error("abstract line without a title line ('|t|') before it", lineno, doc_id, skipped=True)
            elif doc_id != doc.id:
                error(
                    f"abstract line of document {doc_id} follows the title of document {doc.id}",
                    lineno,
                    doc_id,
                    skipped=True,
                )
            elif doc.abstract is not None:
                error("second abstract line", lineno)
            else:
                doc.abstract = content
            continue
        cols = line.rstrip(" ").split("\t")
        if len(cols) == 1:
            error(
                f"unrecognised line {line[:60]!r} (neither '|t|', '|a|' nor tab-separated)",
                lineno,
                doc_id=doc.id if doc else None,
                skipped=doc is None,
            )
        elif doc is None:
            error("annotation line without a title line ('|t|') before it", lineno, cols[0], skipped=True)
        elif cols[0] != doc.id:
            error(f"annotation line of document {cols[0]} inside document {doc.id}", lineno)
        else:
            if doc.abstract is None:
                _missing_abstract(doc, error)
            _annotation(doc, cols, lineno, error)
    if doc is not None:
        yield finish(doc)


def _missing_abstract(doc: _Pending, error) -> None:
    doc.abstract = ""  # read on with an empty abstract when not strict
    error("title line is not followed by an abstract line (write 'PMID|a|' for an empty abstract)", doc.line, doc.id)


def _annotation(doc: _Pending, cols: list[str], lineno: int, error) -> None:
    # Offsets are numbers; a word in the second column is a relation type (CID, Association...).
    if _RELATION_TYPE.fullmatch(cols[1]):
        if len(cols) < 4:
            error(
                f"relation line has {len(cols)} columns, expected at least 4 (PMID, type, id1, id2): truncated?", lineno
            )
        else:
            doc.relations.append(cols[1:])
        return
    if len(cols) < 5:
        error(
            f"annotation line has {len(cols)} tab-separated columns, expected at least 5 "
            "(PMID, start, end, text, type): truncated?",
            lineno,
        )
        return
    if not (_INT.fullmatch(cols[1]) and _INT.fullmatch(cols[2])):
        error(f"non-numeric offset in {cols[1][:30]!r}-{cols[2][:30]!r}", lineno)
        return
    if max(len(cols[1]), len(cols[2])) > _MAX_DIGITS:
        error(f"offset in {cols[1][:30]!r}-{cols[2][:30]!r} has more than {_MAX_DIGITS} digits", lineno)
        return
    m = Mention(
        int(cols[1]), int(cols[2]), cols[3], cols[4], cols[5] if len(cols) > 5 else None, tuple(cols[6:]), line=lineno
    )
    problem = mention_problem(doc.text(), m)
    if problem:
        error(problem, lineno)
    else:
        doc.mentions.append(m)


def _title_and_abstract(doc: Document) -> tuple[str, str]:
    """Split any document into PubTator's two lines (extra passages join the abstract)."""
    text = doc.text
    if not doc.passages:
        return "", ""
    first = min(doc.passages, key=lambda p: p.offset)
    if first.offset != 0:
        raise CorpusFormatError(f"PubTator needs the first passage at offset 0, found {first.offset}", doc_id=doc.id)
    title, rest = first.text, text[len(first.text) :]
    if rest and not rest.startswith(" "):
        raise CorpusFormatError("PubTator needs one space between title and abstract", doc_id=doc.id)
    if "\n" in text:
        raise CorpusFormatError("PubTator cannot hold line breaks in the text", doc_id=doc.id)
    # A "\r" inside a line reads back as text; at the end of the title or abstract it would be
    # taken for part of a CRLF line ending.
    if title.endswith("\r") or rest.endswith("\r"):
        raise CorpusFormatError(
            "PubTator cannot hold a carriage return at the end of the title or abstract", doc_id=doc.id
        )
    if not _ID.fullmatch(doc.id):
        raise CorpusFormatError(
            f"document id {doc.id!r} cannot be written in PubTator (it holds '|', "
            "a tab or a line break, or starts with a byte order mark)",
            doc_id=doc.id,
        )
    return title, rest[1:]


def _columns_ok(doc: Document, values: Iterable[str]) -> None:
    for v in values:
        if "\t" in v or "\n" in v or "\r" in v:
            raise CorpusFormatError(f"value {v!r} contains a tab or line break", doc_id=doc.id)


def write_pubtator(docs: Iterable[Document], path_or_file) -> None:
    """Write Documents as PubTator (LF line endings, UTF-8, a blank line after each document)."""
    f, close = open_for_writing(path_or_file)
    try:
        for doc in docs:
            title, abstract = _title_and_abstract(doc)
            lines = [f"{doc.id}|t|{title}", f"{doc.id}|a|{abstract}"]
            for m in doc.mentions:
                cols = [m.text, m.type]
                if m.identifier is not None or m.extra:
                    cols.append(m.identifier or "")
                cols += m.extra
                _columns_ok(doc, cols)
                lines.append("\t".join([doc.id, str(m.start), str(m.end), *cols]))
            for rel in doc.infons.get("relations", ()):
                _columns_ok(doc, rel)
                lines.append("\t".join([doc.id, *rel]))
            f.write("\n".join(lines) + "\n\n")
    finally:
        if close:
            f.close()
