"""What ``aioner-tag`` reads: the input files, their format, their documents, and their bad records.

Every format is read the same way: a stream of documents, with each bad record reported to a
``RecordLog`` instead of failing the file. The readers say what they did with a bad record
(``CorpusFormatError.skipped``): *skipped* (a JSONL line that is not a record, a BioC document
that cannot be built, a PubTator abstract without its title) or *repaired* (a PubTator document
without its abstract line is tagged with an empty abstract; an annotation that does not fit its
text is left out: the tagger replaces annotations anyway). ``RecordLog`` is the one place that
decides what that costs: the record is listed in ``<name>.errors.jsonl``, or, with ``strict``,
the whole file fails.

Only damage the reader cannot resynchronise after fails the whole file: XML or JSON that does
not parse (BioC), a PubTator or text file that is not UTF-8 (in a format whose records span
lines, another encoding makes every offset after it suspect; a JSONL line that is not UTF-8 is
one bad record), an empty file, a file with no readable document.

PubTator and JSONL are streamed, so a shard of 10^6 records never sits in memory; BioC files are
parsed whole (the bioc package reads whole collections) and plain text is one document.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from aioner.atomic_files import write_text
from dataset_scripts.documents import CorpusFormatError, Document, Passage, iter_lines

FORMATS = ("pubtator", "bioc-xml", "bioc-json", "jsonl", "text")
EXTENSIONS = {
    ".pubtator": "pubtator",
    ".xml": "bioc-xml",
    ".json": "bioc-json",
    ".jsonl": "jsonl",
    ".txt": "text",
    ".bioc": "bioc-xml",
}
STREAMED = ("pubtator", "jsonl")
# Bad records echoed to stderr per file; the errors file lists them all.
SHOWN_PROBLEMS = 5


class InputError(Exception):
    """An input that cannot be tagged; the message names the file (and document)."""


def expand_inputs(patterns: list[str]) -> list[Path]:
    files: list[Path] = []
    for pat in patterns:
        p = Path(pat)
        if p.is_dir():
            # Broken links are kept: reading them fails with a message naming them, instead of a silent skip.
            files += sorted(f for f in p.rglob("*") if (f.is_file() or f.is_symlink()) and not f.name.startswith("."))
        elif p.exists():
            files.append(p)
        else:
            matched = sorted(Path(m) for m in glob.glob(pat, recursive=True) if Path(m).is_file())
            if not matched:
                raise InputError(f"{pat}: no such file, folder or glob match")
            files += matched
    return list(dict.fromkeys(files))


def detect_format(path: Path) -> str:
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt and not fmt.startswith("bioc"):
        return fmt
    with open(path, "rb") as f:
        head = f.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if fmt:  # BioC: XML or JSON as the content says (the output keeps what was read)
        return "bioc-json" if head.startswith(("{", "[")) else "bioc-xml"
    first = head.split("\n", 1)[0]
    if "|t|" in first:
        return "pubtator"
    if head.startswith("<"):
        return "bioc-xml"
    if head.startswith("{") and first.rstrip().endswith("}"):
        return "jsonl"
    if head.startswith(("{", "[")):
        return "bioc-json"
    return "text"


# ----- bad records -----
@dataclass
class BadRecord:
    """One line of ``<name>.errors.jsonl``."""

    line: int | None
    id: str | None
    action: str  # "skipped" or "repaired"
    reason: str

    def describe(self, source: Path) -> str:
        where = (
            [str(source)]
            + ([f"line {self.line}"] if self.line else [])
            + ([f"document {self.id}"] if self.id is not None else [])
        )
        return f"{', '.join(where)}: {self.reason}"


class RecordLog:
    """Collects the bad records of one input; with ``strict``, the first one fails the file.

    Pass it as a reader's ``on_problem``. With ``by_document`` (formats whose records span lines),
    consecutive problems of one document make one record: the annotations of a kept document that
    do not fit its text (repaired), or the lines of a document without its title line (skipped).
    """

    def __init__(self, strict: bool = False, by_document: bool = True):
        self.strict, self.by_document = strict, by_document
        self.records: list[BadRecord] = []

    def __call__(self, err: CorpusFormatError) -> None:
        if self.strict:
            raise InputError(f"{err} (--strict: a bad record fails its file)")
        rec = BadRecord(err.line, err.doc_id, "skipped" if err.skipped else "repaired", err.message)
        last = self.records[-1] if self.records else None
        if (
            self.by_document
            and last is not None
            and rec.id is not None
            and (last.id, last.action) == (rec.id, rec.action)
        ):
            last.reason += f"; line {rec.line}: {rec.reason}" if rec.line else f"; {rec.reason}"
        else:
            self.records.append(rec)

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.records)

    def write(self, path: Path) -> None:
        """``path`` lists the bad records (written whole, then renamed); no bad record: no file."""
        if not self.records:
            path.unlink(missing_ok=True)  # left by an earlier run over an input since mended
            return
        write_text(path, "".join(json.dumps(asdict(rec), ensure_ascii=False) + "\n" for rec in self.records))

    def summary(self, source: Path, errors_file: Path) -> list[str]:
        """What to print: the first few records, and where the rest are."""
        lines = []
        for rec in self.records[:SHOWN_PROBLEMS]:
            lines.append(f"warning: {rec.describe(source)} ({rec.action})")
        if len(self.records) > SHOWN_PROBLEMS:
            lines.append(f"warning: {source}: {len(self.records) - SHOWN_PROBLEMS} more bad records")
        if self.records:
            lines.append(
                f"warning: {source}: {self.count('skipped')} record(s) skipped, "
                f"{self.count('repaired')} repaired: listed in {errors_file}"
            )
        return lines


# ----- documents -----
class Input:
    """One input file: its documents, as often as needed (tagging reads them twice: to tag, to write).

    ``documents(log)`` reports bad records to ``log``; without one they are passed over silently
    (a second reading of a file whose problems were logged on the first). Fatal damage raises
    InputError naming the file.
    """

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self._held: list[Document] | None = None  # formats read whole are read once

    def documents(self, log: RecordLog | None = None) -> Iterator[Document]:
        report = log if log is not None else (lambda err: None)
        if self._held is not None:
            yield from self._held
            return
        try:
            if self.path.stat().st_size == 0:
                raise InputError(f"{self.path}: empty file, no documents")
            if self.fmt in STREAMED:
                yield from self._stream(report)
                return
            self._held = list(self._read_whole(report))
        except CorpusFormatError as err:
            raise InputError(str(err)) from None
        except UnicodeDecodeError as err:
            raise InputError(f"{self.path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        except OSError as err:
            raise InputError(f"{self.path}: cannot be read ({err.strerror or err})") from None
        yield from self._held

    def _stream(self, report) -> Iterator[Document]:
        if self.fmt == "pubtator":
            from dataset_scripts.pubtator import read_pubtator

            yield from read_pubtator(self.path, strict=False, on_problem=report)
        else:
            yield from _jsonl_documents(self.path, report)

    def _read_whole(self, report) -> Iterator[Document]:
        if self.fmt in ("bioc-xml", "bioc-json"):
            from dataset_scripts.bioc_io import read_bioc

            return read_bioc(self.path, strict=False, on_problem=report)
        # The text as it is in the file (a BOM is not text): offsets count its CRLFs.
        with open(self.path, encoding="utf-8-sig", newline="") as f:
            return iter([Document(self.path.stem, [Passage(0, f.read(), "text")], [])])


def _jsonl_documents(path: Path, report) -> Iterator[Document]:
    """JSONL of {"id", "text"}: each line is one record, and a bad line is one skipped record."""
    for n, line in iter_lines(path, str(path), on_bad_line=report):  # BOM and CRLF accepted
        if not line.strip():
            continue
        try:
            yield _jsonl_record(line, n)
        except CorpusFormatError as err:
            report(CorpusFormatError(err.message, path=path, line=n, doc_id=err.doc_id, skipped=True))


def _jsonl_record(line: str, n: int) -> Document:
    doc_id = None
    try:
        rec = json.loads(line)
        doc_id = rec.get("id")
        doc_id = str(n) if doc_id is None else str(doc_id)  # an id of null: the line number
        text = rec["text"]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise CorpusFormatError(
            f"not a JSON object with a 'text' field ({type(err).__name__}: {str(err)[:100]})", doc_id=doc_id
        ) from None
    if not isinstance(text, str):
        raise CorpusFormatError("'text' is not a string", doc_id=doc_id)
    bad = _lone_surrogate(text + doc_id)
    if bad:  # a "\ud800" escape: no valid Unicode text
        raise CorpusFormatError(f"a lone surrogate ({bad}) is not valid Unicode text", doc_id=doc_id)
    return Document(doc_id, [Passage(0, text, "text")], [])


def _lone_surrogate(s: str) -> str | None:
    try:
        s.encode("utf-8")  # fails exactly on lone surrogates
    except UnicodeEncodeError as err:
        return f"U+{ord(s[err.start]):04X}"
    return None


def read_input(path: Path, fmt: str, problems: list[str] | None = None, strict: bool = False) -> list[Document]:
    """Every readable document of one input, in memory (for small files, tests and the HTML view).

    Bad records are appended to ``problems`` as messages naming the file; fatal damage, or no
    readable document at all, raises InputError.
    """
    log = RecordLog(strict, by_document=fmt != "jsonl")
    docs = list(Input(path, fmt).documents(log))
    if problems is not None:
        problems += [r.describe(path) for r in log.records]
    if not docs:
        raise InputError(no_documents(path, log))
    return docs


def no_documents(path: Path, log: RecordLog) -> str:
    skipped = log.count("skipped")
    return f"{path}: no documents found" + (f" ({skipped} bad record(s) skipped)" if skipped else "")
