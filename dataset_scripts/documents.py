"""The document model every reader produces and every writer consumes.

Offsets are document-level Python ``str`` indices (Unicode code points), end
exclusive. A document's text is its passages placed at their offsets with the
gaps filled by spaces, which is exactly the PubTator convention (title, one
space, abstract) and the BioC one (passage offsets are document offsets).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

# Offsets beyond this are refused: a passage placed there would make a text of that many spaces
# (BioC offsets are read as given; real documents, full texts included, are a few million at most).
MAX_OFFSET = 10**8


class CorpusFormatError(ValueError):
    """A corpus file is malformed. Names the file, 1-based line and document id where known.

    ``skipped``: a reader that goes on past the problem (strict=False) left out the whole record
    (a document, or a line that belongs to none); otherwise it kept the record and left out only
    the offending part (an annotation, an extra line) or filled it in (an empty abstract).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        doc_id: str | None = None,
        skipped: bool = False,
    ):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.doc_id = doc_id
        self.skipped = skipped
        where = [self.path] if self.path is not None else []
        if line is not None:
            where.append(f"line {line}")
        if doc_id is not None:
            where.append(f"document {doc_id}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def __reduce__(self):  # keyword-only __init__: needed to pickle (e.g. datasets.map workers)
        return (_rebuild_error, (self.message, self.path, self.line, self.doc_id, self.skipped))


def _rebuild_error(message, path, line, doc_id, skipped=False):
    return CorpusFormatError(message, path=path, line=line, doc_id=doc_id, skipped=skipped)


@dataclass
class Mention:
    start: int
    end: int
    text: str
    type: str
    identifier: str | None = None
    # PubTator columns after the identifier (no corpus here has them, but some tools write them).
    extra: tuple[str, ...] = ()
    # 1-based line of the file it was read from (PubTator), for error messages only: not
    # compared, not shown, not written.
    line: int | None = field(default=None, compare=False, repr=False)


@dataclass
class Passage:
    offset: int
    text: str
    kind: str = ""

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


@dataclass
class Document:
    id: str
    passages: list[Passage]
    mentions: list[Mention]
    infons: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        parts, pos = [], 0
        for p in sorted(self.passages, key=lambda p: p.offset):
            if p.offset < 0:
                raise CorpusFormatError(f"passage at negative offset {p.offset}", doc_id=self.id)
            if p.offset > MAX_OFFSET:
                raise CorpusFormatError(
                    f"passage at offset {p.offset}, beyond the largest supported ({MAX_OFFSET})", doc_id=self.id
                )
            if p.offset < pos:
                raise CorpusFormatError(
                    f"passage at offset {p.offset} overlaps the text before it (which ends at {pos})", doc_id=self.id
                )
            parts += [" " * (p.offset - pos), p.text]
            pos = p.end
        return "".join(parts)

    def validate(self, source: str | None = None) -> None:
        """Raise CorpusFormatError unless every mention matches the text at its offsets."""
        try:
            text = self.text
        except CorpusFormatError as err:
            raise CorpusFormatError(err.message, path=source, doc_id=self.id) from None
        for m in self.mentions:
            problem = mention_problem(text, m)
            if problem:
                raise CorpusFormatError(problem, path=source, doc_id=self.id)


def mention_problem(text: str, m: Mention) -> str | None:
    """Why ``m`` does not fit ``text``, or None when it does."""
    if not 0 <= m.start < m.end <= len(text):
        return (
            f"mention offsets {m.start}-{m.end} ({_clip(m.text)!r}) lie outside the document text "
            f"(length {len(text)}) or are empty"
        )
    if text[m.start : m.end] != m.text:
        return (
            f"mention text {_clip(m.text)!r} does not match the document text "
            f"{_clip(text[m.start : m.end])!r} at {m.start}-{m.end}"
        )
    return None


def _clip(s: str, n: int = 80) -> str:
    """Keep messages about enormous lines readable."""
    return s if len(s) <= n else f"{s[:n]}... ({len(s)} characters)"


class DocumentStream(Iterator[Document]):
    """A lazy iterator of documents that also collects the problems met on the way.

    strict=True: the first problem is raised. strict=False: problems are appended to
    ``self.problems`` (CorpusFormatError instances) and passed to ``on_problem``; the
    offending mention or line is left out, so counts stay explainable.
    """

    def __init__(
        self,
        make: Callable[[Callable[[CorpusFormatError], None]], Iterable],
        *,
        strict: bool = True,
        on_problem: Callable[[CorpusFormatError], None] | None = None,
    ):
        self.strict, self.on_problem = strict, on_problem
        self.problems: list[CorpusFormatError] = []
        self._it = iter(make(self.report))

    def report(self, err: CorpusFormatError) -> None:
        if self.strict:
            raise err
        self.problems.append(err)
        if self.on_problem is not None:
            self.on_problem(err)

    def __next__(self):
        return next(self._it)


def source_name(path_or_file) -> str:
    if isinstance(path_or_file, (str, os.PathLike)):
        return str(path_or_file)
    return str(getattr(path_or_file, "name", "<stream>"))


def iter_lines(
    path_or_file,
    source: str,
    doc_id_of: Callable[[str], str | None] = lambda line: None,
    on_bad_line: Callable[[CorpusFormatError], None] | None = None,
) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its line ending) from a path or file object.

    Decodes UTF-8 line by line so a bad byte is reported with its line number (and the
    document id ``doc_id_of`` finds in the line); fatal, since in a format whose records span
    lines text in another encoding makes every offset after it suspect, unless ``on_bad_line``
    is given (a format of one record per line): it gets the error and the line is left out. Drops byte order marks at the start of
    a line (the file's own, a doubled one, or one left mid-file by concatenating files:
    they would otherwise end up, invisible, in a document id or a word) and accepts LF,
    CRLF and CR CR LF (a twice-converted file) endings. Other trailing whitespace is kept:
    in PubTator it is part of the text and counts in the offsets. Pass paths or binary
    files: a text-mode file object with universal newlines would also split lines at a
    lone "\r".
    """
    own = isinstance(path_or_file, (str, os.PathLike))
    f = open(path_or_file, "rb") if own else path_or_file
    try:
        for lineno, raw in enumerate(f, 1):
            if isinstance(raw, bytes):
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    shown = raw.decode("utf-8", "replace")
                    bad = CorpusFormatError(
                        f"not valid UTF-8 ({err.reason} at byte {err.start} of the line "
                        f"{shown[:60]!r}); wrong encoding?",
                        path=source,
                        line=lineno,
                        doc_id=doc_id_of(shown),
                        skipped=on_bad_line is not None,
                    )
                    if on_bad_line is None:
                        raise bad from None
                    on_bad_line(bad)
                    continue
            raw = raw.lstrip("\ufeff").removesuffix("\n").rstrip("\r")
            yield lineno, raw
    finally:
        if own:
            f.close()


def open_for_writing(path_or_file):
    """(file, should_close) for a path or an already open text file."""
    if hasattr(path_or_file, "write"):
        return path_or_file, False
    return open(path_or_file, "w", encoding="utf-8", newline="\n"), True
