"""Fuzz targets for the readers and the tagger's input handling: generators of damaged files, and oracles.

Shared by ``tests/test_robustness.py`` (CI size: a few thousand cases) and ``python -m
benchmarks.robustness`` (benchmark size: >= 100,000 cases, ``results/robustness.json``). Needs
hypothesis (the ``test`` extra). The oracles:

* a reader (PubTator, BioC XML/JSON, CoNLL) returns documents whose mentions equal the text at
  their offsets, or raises ``CorpusFormatError`` naming the file (and, for line formats, the line;
  and the document whenever the defect lies inside one). Nothing else escapes. What a reader
  returns, its writer writes back (or refuses with ``CorpusFormatError``) and reads back equal;
* the tagger's input handling (``aioner.tagging``: format detection, reading, writing the tagged
  output) returns documents it can tag and write back exactly, or raises ``InputError`` naming the
  file;
* a file of good records with bad ones mixed in gives every good record exactly once, in order,
  with exact offsets, and lists every bad one as skipped;
* the tagging engine returns, for any string, entities equal to the input slice at their offsets,
  covering every non-space character (with a head that calls every word an entity:
  ``aioner.testing.gene_model``).

Generated inputs: valid documents with Greek, combining marks, zero-width characters, emoji,
no-break spaces, tabs, ligatures and control characters, then mutated: wrong, negative, huge and
non-ASCII-digit offsets, mismatched mention text, missing and extra fields, deleted, duplicated,
swapped and foreign lines, enormous lines, JSON values of the wrong type, lone surrogates, random
bytes, other encodings, CRLF, lone CR, BOMs, truncation.

``FUZZ_TARGETS``: name -> (strategy factory, check); a check raises ``Unhandled`` (an
AssertionError) on anything but the documented behaviour. ``fuzz_settings``: hypothesis settings
for a run of n cases.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tempfile
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from dataset_scripts.bioc_io import read_bioc, to_bioc, write_bioc_json, write_bioc_xml
from dataset_scripts.conll import conll_to_documents, read_conll, write_conll
from dataset_scripts.documents import CorpusFormatError, Document, Mention, Passage
from dataset_scripts.pubtator import parse_pubtator_string, read_pubtator, write_pubtator


class Unhandled(AssertionError):
    """An exception other than the documented one escaped, or an oracle failed."""


# =============================================================== generators

WORDS = [
    "BRCA1",
    "p53",
    "IL-2",
    "TNF-alpha",
    "cancer",
    "mice",
    "the",
    "of",
    "(",
    ")",
    ",",
    ".",
    "a/b",
    "x=y",
    "5'",
    "Na+",
    "3,4-dihydroxy",
    "Fig.",
    "et al.",
    "[1]",
    "<b>",
    "&amp;",
    "50%",
]
# Greek, combining marks, zero-width, BOM, emoji (astral, ZWJ sequence), no-break spaces, tab, ligatures,
# minus/hyphens, line separators, NEL, control characters, RTL mark, CJK, math letters, specials.
TRICKY = [
    "α",
    "β",
    "Δ",
    "μ",
    "e\u0301",
    "\u0308",
    "\u200b",
    "\u200c",
    "\u200d",
    "\ufeff",
    "😀",
    "🧬",
    "👩\u200d🔬",
    "\u00a0",
    "\u202f",
    "\t",
    "ﬁ",
    "ﬂ",
    "±",
    "−",
    "‐",
    "\u2028",
    "\x85",
    "\x00",
    "\x07",
    "\x1c",
    "\u200f",
    "基因",
    "é",
    "𝛼",
    "\r",
    "|",
    "\\",
    '"',
    "<",
    "&",
    "]]>",
    "\U0010fffd",
    "\ufffd",
    "\uffff",
    "\u3000",
    "\x0b",
    "\x0c",
]
SURROGATES = ["\ud800", "\udfff", "a\udcffb", "\ud83d"]  # only JSON escapes (or surrogatepass bytes) make these

_SEPS = [" ", " ", " ", " ", "", "  ", "\t", "\u00a0"]


def _char(r) -> str:
    """Any code point but a surrogate."""
    c = r.randint(0, 0x10FFFF - 0x800)
    return chr(c + 0x800 if c >= 0xD800 else c)


def rand_text(r, max_pieces: int = 10) -> str:
    out = []
    for _ in range(r.randint(0, max_pieces)):
        k = r.random()
        out.append(
            r.choice(WORDS)
            if k < 0.45
            else r.choice(TRICKY)
            if k < 0.8
            else "".join(_char(r) for _ in range(r.randint(1, 3)))
        )
        out.append(r.choice(_SEPS))
    return "".join(out)


def rand_id(r) -> str:
    if r.random() < 0.8:
        return str(r.randint(0, 10**9))
    return "".join(c for c in (_char(r) for _ in range(r.randint(0, 6))) if c not in "\t|\n\r")


TYPE_NAMES = ["Gene", "Disease", "Chemical", "Species", "", "Cell Line", "ß", "X\u200b"]
NUMBERS = [
    "",
    "x",
    "-0",
    "+3",
    " 3",
    "3 ",
    "1.5",
    "٣",
    "١٢",
    "9" * 30,
    "9" * 5000,
    "0x1f",
    "1e3",
    "Ⅻ",
    "²",
    "-99999999999999999999",
    "4294967296",
    "100000001",
    "10000000000000",
]
GARBAGE = [
    "|t|",
    "|a|",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\ufeff",
    "-DOCSTART-",
    "<",
    "</passage>",
    "<offset>",
    "{",
    "}",
    "[",
    "]",
    '"',
    "\\",
    ":",
    ",",
    "-1",
    "٣",
    "1.5",
    "&#0;",
    "&#xD800;",
    "<![CDATA[",
    "null",
    "B-",
    "I-Gene",
    "O",
]


def rand_number(r) -> str:
    return str(r.randint(-5, 400)) if r.random() < 0.6 else r.choice(NUMBERS)


def rand_garbage(r) -> str:
    k = r.random()
    return (
        rand_text(r, 2)
        if k < 0.3
        else r.choice(TRICKY)
        if k < 0.45
        else r.choice(SURROGATES)
        if k < 0.5
        else rand_number(r)
        if k < 0.65
        else r.choice(GARBAGE)
    )


def rand_json(r):
    return r.choice(
        [
            None,
            True,
            False,
            r.randint(-(2**70), 2**70),
            r.randint(10**6, 10**13),
            r.random() * 10 ** r.randint(-5, 5),
            float("nan"),
            float("inf"),
            rand_text(r, 1),
            r.choice(SURROGATES),
            "12",
            "-1",
            "",
            "0",
            [],
            {},
            [1, 2],
            {"a": 1},
        ]
    )


def rand_documents(r, kind: str, max_docs: int = 3) -> list[Document]:
    """Valid Documents: PubTator-shaped (title, abstract) or BioC-shaped (0-3 passages with gaps)."""
    docs = []
    for _ in range(r.randint(1, max_docs)):
        doc_id = rand_id(r)
        if kind == "pubtator":
            title, abstract = (rand_text(r).replace("\n", " ") for _ in range(2))
            passages = [Passage(0, title, "title"), Passage(len(title) + 1, abstract, "abstract")]
        else:
            passages, pos = [], 0
            for _ in range(r.randint(0, 3)):
                pos += r.randint(0, 3)
                t = rand_text(r)
                passages.append(Passage(pos, t, r.choice(["title", "abstract", "paragraph", ""])))
                pos += len(t)
        mentions = []
        for p in passages:
            for _ in range(r.randint(0, 4) if p.text else 0):
                s = r.randrange(len(p.text))
                e = r.randint(s + 1, min(len(p.text), s + 25))
                mentions.append(
                    Mention(
                        p.offset + s,
                        p.offset + e,
                        p.text[s:e],
                        r.choice(TYPE_NAMES),
                        rand_id(r) if r.random() < 0.7 else None,
                    )
                )
        docs.append(Document(doc_id, passages, mentions))
    return docs


LINE_OPS = (
    "field",
    "field",
    "field",
    "drop_field",
    "add_field",
    "tabs_to_spaces",
    "delete",
    "duplicate",
    "swap",
    "insert",
    "chars",
    "chars",
    "truncate",
    "blank",
    "change_id",
    "enormous",
)
BYTE_OPS = ("insert", "flip", "truncate", "bom", "bom_start")
ENDINGS = ["\n"] * 6 + ["\r\n", "\r"]
ENCODINGS = ["utf-8"] * 8 + ["utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32", "gb18030", "shift_jis"]


def mutate_lines(r, lines: list[str], ops) -> list[str]:
    for op in ops:
        if not lines:
            lines = [""]
        i = r.randrange(len(lines))
        line = lines[i]
        cols = line.split("\t")
        j = r.randrange(len(cols))
        if op == "field":
            cols[j] = r.choice([rand_number, rand_garbage, lambda r: r.choice(TYPE_NAMES)])(r)
            lines[i] = "\t".join(cols)
        elif op == "drop_field" and len(cols) > 1:
            del cols[j]
            lines[i] = "\t".join(cols)
        elif op == "add_field":
            cols.insert(j, rand_garbage(r))
            lines[i] = "\t".join(cols)
        elif op == "tabs_to_spaces":
            lines[i] = line.replace("\t", r.choice([" ", "  ", ""]))
        elif op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "swap":
            k = r.randrange(len(lines))
            lines[i], lines[k] = lines[k], lines[i]
        elif op == "insert":
            lines.insert(i, rand_garbage(r))
        elif op == "chars":
            k = r.randint(0, len(line))
            lines[i] = line[:k] + rand_garbage(r) + line[k:]
        elif op == "truncate":
            lines[i] = line[: r.randint(0, len(line))]
        elif op == "blank":
            lines.insert(i, r.choice(["", " ", "\t", "\r", "\u2028", "\x85", "\ufeff"]))
        elif op == "change_id":
            lines[i] = rand_id(r) + line[re.match(r"[^\t|]*", line).end() :]
        elif op == "enormous":  # 2,000 to 200,000 characters more in one line
            k = r.randint(0, len(line))
            piece = r.choice(["a", "x ", "é", "😀", "\t", "|", ".", "\u200b"])
            lines[i] = line[:k] + piece * r.choice([2_000, 2_000, 20_000, 200_000]) + line[k:]
    return lines


def encode_and_mutate(r, text: str, ending: str, encoding: str, byte_ops) -> bytes:
    """Line endings, encoding (lone surrogates pass into UTF-8 as invalid bytes) and byte-level damage."""
    if ending != "\n":
        text = text.replace("\n", ending)
    data = text.encode("utf-8", "surrogatepass") if encoding == "utf-8" else text.encode(encoding, "replace")
    for op in byte_ops:
        k = r.randint(0, len(data))
        if op == "insert":
            data = data[:k] + r.randbytes(r.randint(1, 8)) + data[k:]
        elif op == "flip" and data:
            k = min(k, len(data) - 1)
            data = data[:k] + bytes([r.randrange(256)]) + data[k + 1 :]
        elif op == "truncate":
            data = data[:k]
        elif op == "bom":
            data = data[:k] + b"\xef\xbb\xbf" + data[k:]
        elif op == "bom_start":
            data = b"\xef\xbb\xbf" + data
    return data


def plans(max_ops: int = 4):
    """What hypothesis draws (and shrinks): the damage to do, and a seeded Random for the content."""
    return st.fixed_dictionaries(
        {
            "raw": st.integers(0, 19).map(lambda k: k == 0),  # 1 in 20: random bytes, no structure
            "ops": st.one_of(st.just(()), st.lists(st.sampled_from(LINE_OPS), min_size=1, max_size=max_ops)),
            "ending": st.sampled_from(ENDINGS),
            "encoding": st.sampled_from(ENCODINGS),
            "byte_ops": st.one_of(st.just(()), st.lists(st.sampled_from(BYTE_OPS), max_size=2)),
            "rng": st.randoms(use_true_random=True),
        }
    )


def _finish(plan, text: str) -> bytes:
    r = plan["rng"]
    if plan["ops"]:
        text = "\n".join(mutate_lines(r, text.split("\n"), plan["ops"]))
    return encode_and_mutate(r, text, plan["ending"], plan["encoding"], plan["byte_ops"])


def make_pubtator(plan) -> bytes:
    r = plan["rng"]
    if plan["raw"]:
        return r.randbytes(r.randint(0, 300))
    lines = []
    for d in rand_documents(r, "pubtator"):
        lines += [f"{d.id}|t|{d.passages[0].text}", f"{d.id}|a|{d.passages[1].text}"]
        for m in d.mentions:
            lines.append(
                "\t".join(
                    [d.id, str(m.start), str(m.end), m.text, m.type]
                    + ([m.identifier] if m.identifier is not None else [])
                )
            )
        if r.random() < 0.1:
            lines.append(f"{d.id}\tCID\tD001\tD002")
        if r.random() < 0.9:  # sometimes no blank line between documents
            lines.append("")
    return _finish(plan, "\n".join(lines))


_XML_NUMBER = re.compile(r'(?<=offset=")[^"]*|(?<=length=")[^"]*|(?<=<offset>)[^<]*')


def mutate_json(r, obj, n: int):
    for _ in range(n):
        slots = []

        def walk(x):
            items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
            for k, v in items:
                slots.append((x, k))
                walk(v)

        walk(obj)
        if not slots:
            return rand_json(r)
        container, key = r.choice(slots)
        op, value = r.choice(["replace", "replace", "delete", "nudge", "duplicate"]), container[key]
        if op == "delete":
            del container[key]
        elif op == "nudge" and isinstance(value, int) and not isinstance(value, bool):
            container[key] = value + r.randint(-3, 3)
        elif op == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(value))
        elif op == "nudge" and isinstance(value, str):
            k = r.randint(0, len(value))
            container[key] = value[:k] + rand_garbage(r) + value[k:]
        else:
            container[key] = rand_json(r)
    return obj


def make_bioc(plan) -> bytes:
    from bioc import biocjson, biocxml

    r = plan["rng"]
    if plan["raw"]:
        return r.choice([b"<", b"{", b"[", b""]) + r.randbytes(r.randint(0, 300))
    collection = to_bioc(rand_documents(r, "bioc"))
    text = None
    if r.random() < 0.5:
        try:
            text = biocxml.dumps(collection)
        except ValueError:  # control characters: XML cannot hold them
            pass
    ops = plan["ops"]
    if text is not None:
        numbers = list(_XML_NUMBER.finditer(text)) if ops else []
        if numbers and r.random() < 0.7:  # an offset or length: wrong, negative, huge, not a number
            m = r.choice(numbers)
            text = text[: m.start()] + rand_number(r) + text[m.end() :]
            ops = ops[1:]
    else:
        obj = json.loads(biocjson.dumps(collection))
        if ops:  # values of the wrong type, missing keys, duplicated elements
            obj = mutate_json(r, obj, len(ops))
            ops = ops[:1] if r.random() < 0.2 else ()
        text = json.dumps(obj, ensure_ascii=r.random() < 0.5, indent=r.choice([None, 1]))
    return _finish({**plan, "ops": ops}, text)


_CONLL_WORDS = [w for w in WORDS if " " not in w] + [t for t in TRICKY if not t.isspace() and t not in "\r\x00"]
_CONLL_TAGS = ["O", "O", "O", "B-Gene", "I-Gene", "B-Disease", "I-Disease", "I-X", "B-A B"]


def make_conll(plan) -> bytes:
    r = plan["rng"]
    if plan["raw"]:
        return r.randbytes(r.randint(0, 300))
    layout = r.choice(["tab", "space", "tab3"])
    lines = []
    for _ in range(r.randint(0, 4)):
        if r.random() < 0.15:
            lines += ["-DOCSTART- -X- -X- O" if layout == "space" else "-DOCSTART-\tO", ""]
        words = [
            r.choice(_CONLL_WORDS)
            if r.random() < 0.8
            else "".join(c for c in (_char(r) for _ in range(3)) if not c.isspace()) or "w"
            for _ in range(r.randint(1, 8))
        ]
        tags = [r.choice(_CONLL_TAGS) for _ in words]
        if r.random() < 0.15:
            words, tags = ["<ALL>", *words, "</ALL>"], ["O", *tags, "O"]
        for w, t in zip(words, tags):
            lines.append({"tab": f"{w}\t{t}", "space": f"{w} NN I-NP {t}", "tab3": f"{w}\tNN\t{t}"}[layout])
        lines.append("")
    return _finish(plan, "\n".join(lines))


def make_jsonl(plan) -> bytes:
    r = plan["rng"]
    lines = []
    for _ in range(r.randint(0, 4)):
        k = r.random()
        rec = (
            {
                "id": r.choice([rand_id(r), r.randint(0, 99), None]),
                "text": r.choice([rand_text(r), rand_text(r), r.choice(SURROGATES), rand_json(r)]),
            }
            if k < 0.8
            else {"id": rand_id(r)}
            if k < 0.9
            else rand_json(r)
        )
        lines.append(json.dumps(rec, ensure_ascii=r.random() < 0.5))
    return _finish({**plan, "ops": plan["ops"][:2]}, "\n".join(lines))


def make_text(plan) -> bytes:
    r = plan["rng"]
    if plan["raw"]:
        return r.randbytes(r.randint(0, 300))
    return _finish({**plan, "ops": plan["ops"][:2]}, "\n".join(rand_text(r) for _ in range(r.randint(0, 4))))


TAGGER_EXTENSIONS = [".pubtator", ".PubTator", ".xml", ".json", ".jsonl", ".txt", ".bioc", "", ".dat"]
_MAKERS = {"pubtator": make_pubtator, "bioc": make_bioc, "conll": make_conll, "jsonl": make_jsonl, "text": make_text}


def pubtator_cases():
    return plans().map(make_pubtator)


def bioc_cases():
    return plans().map(make_bioc)


def conll_cases():
    return plans().map(make_conll)


def tagger_input_cases():
    return st.tuples(st.sampled_from(TAGGER_EXTENSIONS), st.sampled_from(sorted(_MAKERS)), plans()).map(
        lambda t: (t[0], _MAKERS[t[1]](t[2]))
    )


# =============================================================== oracles

_WORKDIR: Path | None = None


def workdir() -> Path:
    global _WORKDIR
    if _WORKDIR is None:
        import atexit
        import shutil

        _WORKDIR = Path(tempfile.mkdtemp(prefix="aioner-fuzz-"))
        atexit.register(shutil.rmtree, _WORKDIR, ignore_errors=True)
    return _WORKDIR


def _unhandled(what: str, exc: BaseException) -> Unhandled:
    tb = traceback.extract_tb(exc.__traceback__)[-1]
    return Unhandled(
        f"{what}: {type(exc).__name__} escaped at {Path(tb.filename).name}:{tb.lineno} ({tb.name}): {str(exc)[:300]}"
    )


def _has_surrogate(s: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in s)


def check_document(doc: Document, where: str) -> None:
    """A document a reader returned: consistent passages, every mention equal to its text."""
    if not isinstance(doc.id, str):
        raise Unhandled(f"{where}: document id {doc.id!r} is not a string")
    pos = 0
    for p in sorted(doc.passages, key=lambda p: p.offset):
        if type(p.offset) is not int or not isinstance(p.text, str) or p.offset < pos:
            raise Unhandled(f"{where}: document {doc.id}: bad passage {p.offset!r}")
        pos = p.end
    text = doc.text
    if _has_surrogate(text) or any(_has_surrogate(m.text) for m in doc.mentions):
        raise Unhandled(f"{where}: document {doc.id}: lone surrogate in the text")
    for m in doc.mentions:
        if not (
            type(m.start) is int
            and type(m.end) is int
            and isinstance(m.text, str)
            and isinstance(m.type, str)
            and (m.identifier is None or isinstance(m.identifier, str))
        ):
            raise Unhandled(f"{where}: document {doc.id}: mention with fields of the wrong type {m!r}")
        if not (0 <= m.start < m.end <= len(text)) or text[m.start : m.end] != m.text:
            raise Unhandled(f"{where}: document {doc.id}: mention {m!r} does not equal the text at its offsets")


def check_error(err: CorpusFormatError, path: Path, *, line_required: bool = False, doc_required: bool = False) -> None:
    if type(err) is not CorpusFormatError:
        raise Unhandled(f"{type(err).__name__} instead of CorpusFormatError: {err}")
    if err.path != str(path) or str(path) not in str(err):
        raise Unhandled(f"error does not name the file: {err}")
    if line_required and not (isinstance(err.line, int) and err.line >= 1):
        raise Unhandled(f"error does not name the line: {err}")
    if doc_required and err.doc_id is None:
        raise Unhandled(f"error does not name the document: {err}")


_TITLE = re.compile(r"[^\t|\r]*\|t\|")  # as the reader sees a title line


def _pubtator_doc_lines(data: bytes) -> list[bool]:
    """For each line: does it lie in a document (after its title line, before the next blank line)?"""
    inside, out = False, []
    for line in data.decode("utf-8", "replace").removeprefix("\ufeff").split("\n"):
        line = line.lstrip("\ufeff").rstrip("\r")
        if not line.strip():
            inside = False
        elif _TITLE.match(line):
            inside = True
        out.append(inside)
    return out


def check_pubtator(data: bytes) -> None:
    path = workdir() / "fuzz.PubTator"
    path.write_bytes(data)
    in_doc = _pubtator_doc_lines(data)

    def doc_required(err):
        return (
            err.line is not None
            and 1 <= err.line <= len(in_doc)
            and in_doc[err.line - 1]
            and "UTF-8" not in err.message
        )

    strict = None
    try:
        strict = list(read_pubtator(path))
    except CorpusFormatError as err:
        check_error(err, path, line_required=True, doc_required=doc_required(err))
    except Exception as exc:
        raise _unhandled("read_pubtator (strict)", exc) from exc
    problems = []
    try:
        docs = list(read_pubtator(path, strict=False, on_problem=problems.append))
    except CorpusFormatError as err:  # only a wrong encoding is fatal when not strict
        check_error(err, path, line_required=True)
        if "UTF-8" not in err.message:
            raise Unhandled(f"lenient reading raised {err}") from err
        return
    except Exception as exc:
        raise _unhandled("read_pubtator (lenient)", exc) from exc
    for p in problems:
        check_error(p, path, line_required=True, doc_required=doc_required(p))
    for d in docs:
        check_document(d, "read_pubtator")
    if strict is not None and (strict != docs or problems):
        raise Unhandled("strict and lenient reading disagree on a file without problems")
    # What was read is written back (or refused with the documented error) and reads back equal.
    buf = io.StringIO()
    try:
        write_pubtator(docs, buf)
    except CorpusFormatError as err:
        if err.doc_id is None:
            raise Unhandled(f"writer error does not name the document: {err}") from err
        return
    except Exception as exc:
        raise _unhandled("write_pubtator", exc) from exc
    try:
        back = parse_pubtator_string(buf.getvalue())
    except Exception as exc:
        raise _unhandled("reading back what write_pubtator wrote", exc) from exc
    if back != docs:
        raise Unhandled("write_pubtator then read_pubtator changed the documents")


def check_bioc(data: bytes) -> None:
    path = workdir() / "fuzz.bioc"
    path.write_bytes(data)
    for strict in (True, False):
        problems = []
        try:
            stream = read_bioc(path, strict=strict, on_problem=problems.append)
        except CorpusFormatError as err:  # the file as a whole: not XML/JSON, not BioC, encoding
            check_error(err, path)
            return
        except Exception as exc:
            raise _unhandled("read_bioc (loading)", exc) from exc
        try:
            docs = list(stream)
        except CorpusFormatError as err:  # inside a document: must name it
            check_error(err, path, doc_required=True)
            if not strict:
                raise Unhandled(f"lenient reading raised {err}") from err
            continue
        except Exception as exc:
            raise _unhandled(f"read_bioc (documents, strict={strict})", exc) from exc
        for p in problems:
            check_error(p, path, doc_required=True)
        for d in docs:
            check_document(d, "read_bioc")
        if not strict:
            for write, name in ((write_bioc_json, "back.json"), (write_bioc_xml, "back.xml")):
                try:
                    write(docs, workdir() / name)
                except CorpusFormatError:
                    continue  # XML cannot hold control characters: documented refusal
                except Exception as exc:
                    raise _unhandled(f"{write.__name__}", exc) from exc
                try:
                    back = list(read_bioc(workdir() / name))
                except Exception as exc:
                    raise _unhandled(f"reading back what {write.__name__} wrote", exc) from exc
                want = [
                    Document(d.id, d.passages, d.mentions, {k: str(v) for k, v in d.infons.items() if k != "relations"})
                    for d in docs
                ]
                got = [
                    Document(d.id, d.passages, d.mentions, {k: v for k, v in d.infons.items() if k != "relations"})
                    for d in back
                ]
                if [(d.id, d.text, d.mentions) for d in got] != [(d.id, d.text, d.mentions) for d in want]:
                    raise Unhandled(f"{write.__name__} then read_bioc changed the documents")


def check_conll(data: bytes) -> None:
    path = workdir() / "fuzz.conll"
    path.write_bytes(data)
    try:
        sentences = list(read_conll(path))
    except CorpusFormatError as err:
        check_error(err, path, line_required=True)
        return
    except Exception as exc:
        raise _unhandled("read_conll", exc) from exc
    for s in sentences:
        if not s.words or len(s.words) != len(s.tags) or s.line < 1:
            raise Unhandled(f"read_conll returned a bad sentence {s!r}")
    for per_doc in (1, None):
        try:
            docs = list(conll_to_documents(sentences, "fuzz", sentences_per_doc=per_doc))
        except Exception as exc:
            raise _unhandled("conll_to_documents", exc) from exc
        for d in docs:
            check_document(d, "conll_to_documents")
    buf = io.StringIO()
    try:
        write_conll(sentences, buf)
    except CorpusFormatError:
        return
    except Exception as exc:
        raise _unhandled("write_conll", exc) from exc
    try:
        back = list(read_conll(io.BytesIO(buf.getvalue().encode("utf-8"))))
    except Exception as exc:
        raise _unhandled("reading back what write_conll wrote", exc) from exc
    key = lambda s: (s.words, s.tags, s.doc_start)  # noqa: E731
    if [key(s) for s in back] != [key(s) for s in sentences]:
        raise Unhandled("write_conll then read_conll changed the sentences")


def word_entities(doc: Document) -> list[dict]:
    """What a tagger that calls every run of non-space characters an entity would return."""
    text = doc.text
    return [
        {"start": p.offset + m.start(), "end": p.offset + m.end(), "text": m.group(), "type": "Gene", "score": 1.0}
        for p in doc.passages
        for m in re.finditer(r"\S+", text[p.offset : p.end])
    ]


def check_tagger_input(case: tuple[str, bytes]) -> None:
    from aioner.tagged_output import OUTPUT_SUFFIX, write_output
    from aioner.tagging import InputError, detect_format, read_input

    ext, data = case
    path = workdir() / f"input{ext}"
    path.write_bytes(data)
    try:
        fmt = detect_format(path)
    except Exception as exc:
        raise _unhandled("detect_format", exc) from exc
    problems: list[str] = []
    try:
        docs = read_input(path, fmt, problems)
    except InputError as err:
        if str(path) not in str(err):
            raise Unhandled(f"InputError does not name the file: {err}") from err
        return
    except Exception as exc:
        raise _unhandled(f"read_input ({fmt})", exc) from exc
    if not docs:
        raise Unhandled("read_input returned no documents and no error")
    for p in problems:
        if str(path) not in p:
            raise Unhandled(f"problem does not name the file: {p}")
    for d in docs:
        check_document(d, f"read_input ({fmt})")
        for p in d.passages:
            if not 0 <= p.offset <= p.end <= len(d.text):
                raise Unhandled(f"passage {p.offset}-{p.end} outside the text of document {d.id}")
    entities = [word_entities(d) for d in docs]
    out = workdir() / "out" / ("input" + OUTPUT_SUFFIX[fmt])
    out.parent.mkdir(exist_ok=True)
    try:
        write_output(zip(docs, entities), fmt, out)
    except Exception as exc:
        raise _unhandled(f"write_output ({fmt}) of documents read_input accepted", exc) from exc
    try:
        if fmt in ("pubtator", "bioc-xml", "bioc-json"):
            back = [
                (d.id, d.text, [(m.start, m.end, m.text) for m in d.mentions])
                for d in (read_pubtator(out) if fmt == "pubtator" else read_bioc(out))
            ]
        else:
            with open(out, encoding="utf-8") as f:
                back = [
                    (r["id"], r["text"], [(e["start"], e["end"], e["text"]) for e in r["entities"]])
                    for r in map(json.loads, f)
                ]
    except Exception as exc:
        raise _unhandled(f"reading back the tagged {fmt} output", exc) from exc
    want = [(d.id, d.text, [(e["start"], e["end"], e["text"]) for e in ents]) for d, ents in zip(docs, entities)]
    if fmt != "pubtator":  # BioC orders mentions by passage, so compare as sets per document
        back = [(i, t, sorted(m)) for i, t, m in back]
        want = [(i, t, sorted(m)) for i, t, m in want]
    if back != want:
        raise Unhandled(f"the tagged {fmt} output does not hold every document with its text and entities")


# =============================================================== bad records mixed into good ones (issue 19)


# A bad record of each kind, as the format holds it; each is one record the reader skips.
def _bad_jsonl(kind: str, k: int) -> bytes:
    return {
        "truncated": json.dumps({"id": f"b{k}", "text": "BRCA1 is a gene"})[:20].encode(),
        "no_text": json.dumps({"id": f"b{k}", "body": "x"}).encode(),
        "not_string": json.dumps({"id": f"b{k}", "text": 5}).encode(),
        "not_utf8": b'{"id": "b%d", "text": "caf\xe9"}' % k,
        "surrogate": b'{"id": "b%d", "text": "\\ud800"}' % k,
        "not_object": b"[1, 2]",
    }[kind]


def _bad_pubtator(kind: str, k: int) -> str:
    return {
        "orphan_abstract": f"b{k}|a|An abstract without its title.\nb{k}\t0\t2\tAn\tGene",
        "orphan_annotation": f"b{k}\t0\t2\tAn\tGene",
        "garbage": "a line that is no PubTator line",
    }[kind]


def _bad_bioc_xml(kind: str, k: int) -> str:
    passage = {
        "no_offset": "<passage><text>x</text></passage>",
        "bad_offset": "<passage><offset>abc</offset><text>x</text></passage>",
        "overlap": "<passage><offset>0</offset><text>xyz</text></passage>"
        "<passage><offset>1</offset><text>y</text></passage>",
    }[kind]
    return f"<document><id>b{k}</id>{passage}</document>"


def _bad_bioc_json(kind: str, k: int) -> dict:
    doc = {
        "id": f"b{k}",
        "infons": {},
        "relations": [],
        "passages": [{"offset": 0, "infons": {}, "text": "x", "sentences": [], "annotations": [], "relations": []}],
    }
    if kind == "no_relations":
        del doc["relations"]
    elif kind == "string_offset":
        doc["passages"][0]["offset"] = "zero"
    else:  # passages_not_list
        doc["passages"] = 5
    return doc


BAD_KINDS = {
    "jsonl": ["truncated", "no_text", "not_string", "not_utf8", "surrogate", "not_object"],
    "pubtator": ["orphan_abstract", "orphan_annotation", "garbage"],
    "bioc-xml": ["no_offset", "bad_offset", "overlap"],
    "bioc-json": ["no_relations", "string_offset", "passages_not_list"],
}
MIXED_EXTENSIONS = {"jsonl": ".jsonl", "pubtator": ".pubtator", "bioc-xml": ".xml", "bioc-json": ".json"}


def mixed_file_cases():
    """(format, good documents drawn from a seed, [(position, bad kind)])."""

    def case(fmt):
        return st.tuples(
            st.just(fmt),
            st.integers(1, 25),
            st.randoms(use_true_random=True),
            st.lists(st.tuples(st.integers(0, 25), st.sampled_from(BAD_KINDS[fmt])), min_size=1, max_size=5),
        )

    return st.sampled_from(sorted(BAD_KINDS)).flatmap(case)


def _serialise(fmt: str, docs: list[Document], bad: list[tuple[int, str]]) -> bytes:
    """The good documents in the format, with the bad records spliced in before the given positions."""
    before = {}
    for k, (pos, kind) in enumerate(bad):
        before.setdefault(min(pos, len(docs)), []).append((kind, k))
    if fmt == "jsonl":
        out = []
        for i in range(len(docs) + 1):
            out += [_bad_jsonl(kind, k) for kind, k in before.get(i, [])]
            if i < len(docs):
                out.append(json.dumps({"id": docs[i].id, "text": docs[i].text}, ensure_ascii=False).encode())
        return b"\n".join(out) + b"\n"
    if fmt == "bioc-json":
        buf = workdir() / "mixed-clean.json"
        write_bioc_json(docs, buf)
        obj = json.loads(buf.read_text(encoding="utf-8"))
        good = obj["documents"]
        obj["documents"] = [
            d
            for i in range(len(good) + 1)
            for d in [_bad_bioc_json(kind, k) for kind, k in before.get(i, [])] + good[i : i + 1]
        ]
        return json.dumps(obj, ensure_ascii=False).encode()
    buf = io.StringIO()
    if fmt == "pubtator":
        write_pubtator(docs, buf)
        blocks = buf.getvalue().split("\n\n")[:-1]
        bad_block = _bad_pubtator
    else:
        path = workdir() / "mixed-clean.xml"
        write_bioc_xml(docs, path)
        xml = path.read_text(encoding="utf-8")
        head, _, rest = xml.partition("<document>")
        body, _, tail = ("<document>" + rest).rpartition("</collection>")
        blocks = ["<document>" + b for b in body.split("<document>")[1:]]
        bad_block = _bad_bioc_xml
    out = []
    for i in range(len(docs) + 1):
        out += [bad_block(kind, k) for kind, k in before.get(i, [])]
        out += blocks[i : i + 1]
    if fmt == "pubtator":
        return ("\n\n".join(out) + "\n\n").encode()
    return (head + "".join(out) + "</collection>" + tail).encode()


def mixed_file_counts(case) -> dict:
    """Read a file of good records with bad ones mixed in, tag it (every word an entity), write and read
    it back. Raises Unhandled on any error; returns the counts the campaign records."""
    from aioner.inputs import Input, RecordLog
    from aioner.tagged_output import OUTPUT_SUFFIX, write_output

    fmt, n, r, bad = case
    kind = "pubtator" if fmt == "pubtator" else "bioc"
    docs = [
        Document(f"g{i}", d.passages, [])
        for i, d in enumerate(d for _ in range(n) for d in rand_documents(r, kind, max_docs=1))
    ]
    docs = [d for d in docs if d.text.strip() and all(_xml_char(c) and c not in "\r\x85" for c in d.text)][:n]
    if not docs:
        return {"good": 0, "lost": 0, "duplicated": 0, "bad": 0, "reported": 0}
    path = workdir() / f"mixed{MIXED_EXTENSIONS[fmt]}"
    path.write_bytes(_serialise(fmt, docs, []))
    log = RecordLog(by_document=fmt != "jsonl")
    clean = [(d.id, d.text) for d in Input(path, fmt).documents(log)]
    if log.records or [i for i, _ in clean] != [d.id for d in docs]:
        raise Unhandled(f"{fmt}: the clean file does not read back as written: {log.records[:2]}")
    path.write_bytes(_serialise(fmt, docs, bad))
    log = RecordLog(by_document=fmt != "jsonl")
    try:
        got = list(Input(path, fmt).documents(log))
    except Exception as exc:
        raise _unhandled(f"{fmt} with bad records mixed in", exc) from exc
    ids = [d.id for d in got]
    reported = [rec for rec in log.records if rec.action == "skipped"]
    counts = {
        "good": len(clean),
        "lost": sum(i not in ids for i, _ in clean),
        "duplicated": len(ids) - len(set(ids)),
        "bad": len(bad),
        "reported": len(reported),
    }
    if [(d.id, d.text) for d in got] != clean:
        raise Unhandled(f"{fmt}: the good records did not come out exactly once, in order: {counts}")
    if len(reported) != len(bad) or len(log.records) != len(bad):
        raise Unhandled(
            f"{fmt}: {len(bad)} bad records, {len(reported)} reported as skipped "
            f"({[r.reason[:60] for r in log.records]})"
        )
    out = workdir() / "mixed-out" / ("mixed" + OUTPUT_SUFFIX[fmt])
    out.parent.mkdir(exist_ok=True)
    entities = [word_entities(d) for d in got]
    write_output(zip(got, entities), fmt, out)
    if fmt == "jsonl":
        back = [
            (x["id"], x["text"], [(e["start"], e["end"], e["text"]) for e in x["entities"]])
            for x in map(json.loads, out.read_text(encoding="utf-8").split("\n")[:-1])
        ]  # not splitlines: U+2028
    else:
        back = [
            (d.id, d.text, [(m.start, m.end, m.text) for m in d.mentions])
            for d in (read_pubtator(out) if fmt == "pubtator" else read_bioc(out))
        ]  # strict readers
    want = [(d.id, d.text, [(e["start"], e["end"], e["text"]) for e in ents]) for d, ents in zip(got, entities)]
    if [(i, t, sorted(m)) for i, t, m in back] != [(i, t, sorted(m)) for i, t, m in want]:
        raise Unhandled(f"{fmt}: the tagged output does not hold every good record with exact offsets")
    return counts


def check_mixed_file(case) -> None:
    mixed_file_counts(case)


FUZZ_TARGETS = {
    "pubtator": (pubtator_cases, check_pubtator),
    "bioc": (bioc_cases, check_bioc),
    "conll": (conll_cases, check_conll),
    "tagger_input": (tagger_input_cases, check_tagger_input),
    "mixed_files": (mixed_file_cases, check_mixed_file),
}


def fuzz_settings(n: int, *, shrink: bool = True, seed: int | None = None):
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    s = settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        derandomize=seed is None,
    )
    return s


# =============================================================== Unicode offsets (property test)

_unicode_piece = st.one_of(
    st.sampled_from(WORDS), st.sampled_from(TRICKY), st.sampled_from(SURROGATES), st.text(max_size=3)
)
UNICODE_TEXTS = st.lists(
    st.tuples(_unicode_piece, st.sampled_from(_SEPS + ["\n", "\r\n", "\u2028", "\u3000"])), max_size=25
).map(lambda ps: "".join(a + b for a, b in ps))


def _xml_char(c: str) -> bool:
    o = ord(c)
    return c in "\t\n\r" or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


def check_unicode(engine, title: str, abstract: str, work: Path) -> None:
    """Every entity is the input slice at its offsets, every non-space character is in one; BioC offsets
    are code points as ``bioc.validate`` (which slices Python strings) checks them."""
    import bioc
    import pytest
    from bioc import biocjson, biocxml

    text = f"{title} {abstract}"
    ents = engine.tag([text], "ALL", [[(0, len(title)), (len(title) + 1, len(text))]])[0]
    covered = []
    for e in ents:
        s, t = e["start"], e["end"]
        assert 0 <= s < t <= len(text) and text[s:t] == e["text"] == e["word"], e
        assert t <= len(title) or s > len(title), f"entity {e} crosses the title/abstract boundary"
        assert not any(c.isspace() for c in e["text"]), e
        covered += range(s, t)
    assert covered == [i for i, c in enumerate(text) if not c.isspace()], "a character is lost or repeated"
    if _has_surrogate(text):
        return  # not Unicode text: no file format can hold it (the readers refuse it)
    doc = Document(
        "u1",
        [Passage(0, title, "title"), Passage(len(title) + 1, abstract, "abstract")],
        [Mention(e["start"], e["end"], e["text"], e["type"]) for e in ents],
    )
    path = work / "u.json"
    write_bioc_json([doc], path)
    with open(path, encoding="utf-8") as f:
        collection = biocjson.load(f)
    bioc.validate(collection)  # raises unless every annotation's text is the passage text at its offsets
    for p in collection.documents[0].passages:
        for a in p.annotations:
            loc = a.locations[0]
            assert p.text[loc.offset - p.offset : loc.offset - p.offset + loc.length] == a.text
    assert list(read_bioc(path)) == [doc]
    if all(map(_xml_char, text)):
        write_bioc_xml([doc], work / "u.xml")
        collection = biocxml.load(open(work / "u.xml", "rb"))
        bioc.validate(collection)
        assert list(read_bioc(work / "u.xml")) == [doc]
    else:
        with pytest.raises(CorpusFormatError, match="XML"):
            write_bioc_xml([doc], work / "u.xml")
