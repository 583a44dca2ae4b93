"""BioC XML / BioC JSON reader and writers, built on the ``bioc`` package (2.x).

Offsets. The BioC DTD (comment in BioC.dtd) says passage and annotation offsets are
document-level and "should be in 8 bit code units (bytes)", but calls this "nothing
final". The ``bioc`` package converts nothing: it stores the integers as read, and
its own validator (``bioc.validate``) slices Python strings, i.e. it treats offsets
as characters (code points). The PubTator corpora here use code points too (no
mismatch in the 8360 non-ASCII characters of NLMchem_Test). This module therefore
uses code points, like ``documents.Document``. A file written with byte offsets
reads fine while its text is ASCII and then fails with a text-mismatch
CorpusFormatError after the first non-ASCII character (annotations carry their text,
as the DTD requires): the mistake is reported, never silently shifted.

Mapping. Every passage becomes a Passage (infon "type" → kind; passages without text
but with sentences get their text rebuilt from the sentences, gaps filled with
spaces). Annotations of the document, its passages and their sentences become
Mentions, in that order, so PubTator → BioC → PubTator keeps the mention order when
the PubTator mentions are in passage order (true of every file in shared/corpora:
all round-trip to identical Documents through XML and JSON). Infon "type" → type;
"identifier" (or, as other corpora spell it, "concept_id", "MESH", "NCBI Gene") →
identifier. Document infons are kept, PubTator relations travel as BioC relations;
passage infons other than "type" and sentence boundaries are not kept.

Discontinuous annotations (several locations): merged into one Mention when the
locations touch or overlap (a span split into pieces); with a gap between them the
annotation cannot be a single span, so it is reported (CorpusFormatError, or with
strict=False a problem and the annotation is left out).

Errors name the file and the document id: content that is neither XML nor JSON, a
malformed BioC structure, overlapping passages or sentences, an annotation outside its
passage, annotation text differing from the document text, values of the wrong type
(BioC JSON can hold any JSON value anywhere: an offset must be an integer from 0 to
10**8, a text or infon value a string), text that is not valid Unicode (a lone surrogate, which
JSON's "\ud800" escapes can make). A document without an id is named by its position
("#3"). Empty XML infons (``<infon key="type"/>``) read as "".

XML caveat: XML 1.0 cannot hold most control characters (U+0000-U+001F except tab,
LF, CR); writing such text raises CorpusFormatError. Use BioC JSON for such text.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable

import bioc
from bioc import biocjson, biocxml
from lxml import etree  # installed with bioc, which parses XML with it

from .documents import MAX_OFFSET, CorpusFormatError, Document, DocumentStream, Mention, Passage, mention_problem

IDENTIFIER_KEYS = ("identifier", "concept_id", "MESH", "NCBI Gene")
_EXTRA_KEY = "pubtator_extra"  # PubTator columns beyond the identifier, tab-joined


def read_bioc(
    path, *, strict: bool = True, on_problem: Callable[[CorpusFormatError], None] | None = None
) -> DocumentStream:
    """Documents of a BioC XML or BioC JSON file (the format is detected from the content).

    A file that does not parse (not XML, not JSON, not a collection) raises CorpusFormatError here;
    a document that does (as XML or JSON) but is not a valid BioC document is a problem of that
    document alone (with strict=False it is reported as skipped and the others are read).
    """
    source = str(path)
    items = _load(path, source)
    return DocumentStream(lambda report: _documents(items, source, report), strict=strict, on_problem=on_problem)


# What bioc's decoders raise on a missing key (JSON) or element (XML) or a value of the wrong type.
_DECODE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, RecursionError)


def _load(path, source: str) -> list:
    """The documents of the file, each a BioCDocument or a CorpusFormatError (it could not be built)."""
    with open(path, "rb") as f:
        raw = f.read()
    head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    try:
        if head == b"<":
            return list(_xml_documents(raw, source))
        if head in (b"{", b"["):
            return list(_json_documents(raw.decode("utf-8-sig"), source))
    except UnicodeDecodeError as err:
        raise CorpusFormatError(f"not valid UTF-8 ({err.reason} at byte {err.start})", path=source) from None
    except json.JSONDecodeError as err:
        raise CorpusFormatError(f"invalid BioC JSON: {err.msg}", path=source, line=err.lineno) from None
    except etree.XMLSyntaxError as err:
        raise CorpusFormatError(f"invalid BioC XML: {err.msg}", path=source, line=err.lineno) from None
    except _DECODE_ERRORS as err:
        raise CorpusFormatError(
            f"not a valid BioC file: {type(err).__name__}: {err}", path=source, line=getattr(err, "lineno", None)
        ) from None
    raise CorpusFormatError("neither BioC XML nor BioC JSON (expected '<' or '{' first)", path=source)


def _xml_documents(raw: bytes, source: str):
    tree = etree.parse(io.BytesIO(raw))  # lxml honours the XML encoding declaration
    root = tree.getroot()
    if root.tag != "collection":
        raise CorpusFormatError(f"the root element is <{root.tag}>, not a BioC <collection>", path=source)
    for n, elem in enumerate(root.iterfind("document"), 1):
        # bioc decodes whole collections only: each document goes through it in a collection of its own,
        # so that one malformed document (a passage without <offset>) costs only itself.
        one = b"<collection>" + etree.tostring(elem, encoding="utf-8") + b"</collection>"
        try:
            yield biocxml.loads(one.decode("utf-8")).documents[0]
        except _DECODE_ERRORS as err:
            yield CorpusFormatError(
                f"not a valid BioC document: {type(err).__name__}: {err}",
                path=source,
                line=elem.sourceline,
                doc_id=elem.findtext("id") or f"#{n}",
                skipped=True,
            )


def _json_documents(text: str, source: str):
    from bioc.biocjson.decoder import parse_collection, parse_doc

    obj = json.loads(text)
    if not isinstance(obj, dict) or not isinstance(obj.get("documents"), list):
        raise CorpusFormatError("not a BioC JSON collection (an object with a 'documents' list)", path=source)
    parse_collection({**obj, "documents": []})  # the collection's own keys
    for n, d in enumerate(obj["documents"], 1):
        try:
            yield parse_doc(d)
        except _DECODE_ERRORS as err:
            doc_id = d.get("id") if isinstance(d, dict) and isinstance(d.get("id"), str) else f"#{n}"
            yield CorpusFormatError(
                f"not a valid BioC document: {type(err).__name__}: {err}", path=source, doc_id=doc_id, skipped=True
            )


def _documents(items: list, source: str, report):
    for n, bdoc in enumerate(items, 1):
        if isinstance(bdoc, CorpusFormatError):
            report(bdoc)
            continue
        doc_id = str(bdoc.id) if isinstance(bdoc.id, (str, int)) and not isinstance(bdoc.id, bool) else f"#{n}"

        def error(message, skipped=False):
            report(CorpusFormatError(message, path=source, doc_id=doc_id, skipped=skipped))

        problem = _structure_problem(bdoc)
        if problem:
            error(problem, skipped=True)
            continue
        try:
            passages = [Passage(p.offset, _passage_text(p), _infons(p.infons).get("type", "")) for p in bdoc.passages]
            doc = Document(doc_id, passages, [], _document_infons(bdoc))
            text = doc.text
        except CorpusFormatError as err:
            error(err.message, skipped=True)  # without consistent passages no offset can be trusted
            continue
        owned = [(a, None) for a in bdoc.annotations]
        for p, passage in zip(bdoc.passages, passages):
            owned += [(a, passage) for a in p.annotations]
            owned += [(a, passage) for s in p.sentences for a in s.annotations]
        for ann, passage in owned:
            m = _mention(ann, passage, text, error)
            if m is not None:
                doc.mentions.append(m)
        yield doc


def _passage_text(p: bioc.BioCPassage) -> str:
    if p.text or not p.sentences:
        return p.text or ""
    parts, pos = [], p.offset
    for s in sorted(p.sentences, key=lambda s: s.offset):
        if s.offset < pos:
            raise CorpusFormatError(
                f"sentence at offset {s.offset} overlaps the text before it (which ends "
                f"at {pos}) or starts before its passage"
            )
        parts += [" " * (s.offset - pos), s.text or ""]
        pos = s.offset + len(s.text or "")
    return "".join(parts)


def _structure_problem(bdoc: bioc.BioCDocument) -> str | None:
    """Why a parsed document cannot be read (values of the wrong type, invalid Unicode), or None."""
    if not (isinstance(bdoc.id, (str, int)) and not isinstance(bdoc.id, bool)):
        return f"document id {bdoc.id!r} is missing or not a string"
    checks = [
        _text_problem(bdoc.id if isinstance(bdoc.id, str) else "", "document id"),
        _infons_problem(bdoc.infons, "document"),
    ]
    annotations = list(bdoc.annotations)
    relations = list(bdoc.relations)
    for i, p in enumerate(bdoc.passages):
        checks += [
            _offset_problem(p.offset, f"passage {i}"),
            _text_problem(p.text, f"passage {i}"),
            _infons_problem(p.infons, f"passage {i}"),
        ]
        for j, sent in enumerate(p.sentences):
            checks += [
                _offset_problem(sent.offset, f"passage {i}, sentence {j}"),
                _text_problem(sent.text, f"passage {i}, sentence {j}"),
            ]
            annotations += sent.annotations
            relations += sent.relations
        annotations += p.annotations
        relations += p.relations
    for ann in annotations:
        where = f"annotation {ann.id}"
        checks += [_text_problem(ann.text, where), _infons_problem(ann.infons, where)]
        for loc in ann.locations:
            checks += [
                _offset_problem(loc.offset, f"{where}: location offset"),
                _offset_problem(loc.length, f"{where}: location length"),
            ]
    checks += [_infons_problem(r.infons, f"relation {r.id}") for r in relations]
    return next((c for c in checks if c), None)


def _offset_problem(value, where: str) -> str | None:
    if type(value) is not int or not 0 <= value <= MAX_OFFSET:
        return f"{where}: {value!r} is not an integer from 0 to {MAX_OFFSET}"
    return None


def _text_problem(value, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{where}: text {value!r} is not a string"
    try:
        value.encode("utf-8")  # fails exactly on lone surrogates
    except UnicodeEncodeError as err:
        return (
            f"{where}: lone surrogate U+{ord(value[err.start]):04X} (an escape in the JSON?) is not valid Unicode text"
        )
    return None


def _infons_problem(infons, where: str) -> str | None:
    if not isinstance(infons, dict):
        return f"{where}: infons {infons!r} are not a mapping of strings"
    for key, value in infons.items():
        problem = _text_problem(value, f"{where}: infon {key!r}") or _text_problem(key, f"{where}: infon key")
        if problem:
            return problem
    return None


def _infons(infons: dict) -> dict:
    """Infons with None (an empty XML element) read as ""."""
    return {str(k): "" if v is None else v for k, v in infons.items()}


def _mention(ann: bioc.BioCAnnotation, passage: Passage | None, text: str, error) -> Mention | None:
    locs = sorted((loc.offset, loc.offset + loc.length) for loc in ann.locations)
    if not locs:
        error(f"annotation {ann.id} has no location")
        return None
    start, end = locs[0]
    for s, e in locs[1:]:
        if s > end:
            error(
                f"annotation {ann.id} is discontinuous ({', '.join(f'{a}-{b}' for a, b in locs)}); "
                "a mention must be one span"
            )
            return None
        end = max(end, e)
    if passage is not None and not passage.offset <= start < end <= passage.end:
        error(f"annotation {ann.id} at {start}-{end} lies outside its passage ({passage.offset}-{passage.end})")
        return None
    infons = _infons(ann.infons)
    identifier = next((infons[k] for k in IDENTIFIER_KEYS if k in infons), None)
    extra = tuple(infons[_EXTRA_KEY].split("\t")) if _EXTRA_KEY in infons else ()
    m = Mention(
        start, end, ann.text if ann.text is not None else text[start:end], infons.get("type", ""), identifier, extra
    )
    problem = mention_problem(text, m)
    if problem:
        error(f"annotation {ann.id}: {problem}")
        return None
    return m


def _document_infons(bdoc: bioc.BioCDocument) -> dict:
    infons = _infons(bdoc.infons)
    relations = [_relation_columns(_infons(r.infons)) for r in bdoc.relations]
    if relations:
        infons["relations"] = relations
    return infons


def _relation_columns(infons: dict) -> list[str]:
    """PubTator relation columns: type, entity1, entity2, then any other infon values (BioRED: novel)."""
    first = ["type", "entity1", "entity2"]
    return [infons.get(k, "") for k in first] + [v for k, v in infons.items() if k not in first]


def to_bioc(docs: Iterable[Document], source: str = "") -> bioc.BioCCollection:
    collection = bioc.BioCCollection()
    collection.source = source
    for doc in docs:
        collection.add_document(_to_bioc_document(doc))
    return collection


def _to_bioc_document(doc: Document) -> bioc.BioCDocument:
    bdoc = bioc.BioCDocument()
    bdoc.id = doc.id
    bdoc.infons = {k: str(v) for k, v in doc.infons.items() if k != "relations"}
    bpassages = []
    for p in doc.passages:
        bp = bioc.BioCPassage()
        bp.offset, bp.text = p.offset, p.text
        if p.kind:
            bp.infons["type"] = p.kind
        bdoc.add_passage(bp)
        bpassages.append((p, bp))
    for i, m in enumerate(doc.mentions):
        owner = next((bp for p, bp in bpassages if p.offset <= m.start and m.end <= p.end), None)
        if owner is None:
            raise CorpusFormatError(f"mention {m.start}-{m.end} ({m.text!r}) is not inside one passage", doc_id=doc.id)
        ann = bioc.BioCAnnotation()
        ann.id, ann.text = f"T{i}", m.text
        ann.infons["type"] = m.type
        if m.identifier is not None:
            ann.infons["identifier"] = m.identifier
        if m.extra:
            ann.infons[_EXTRA_KEY] = "\t".join(m.extra)
        ann.add_location(bioc.BioCLocation(m.start, m.end - m.start))
        owner.add_annotation(ann)
    for i, cols in enumerate(doc.infons.get("relations", ())):
        rel = bioc.BioCRelation()
        rel.id = f"R{i}"
        rel.infons.update(zip(["type", "entity1", "entity2"], cols))
        rel.infons.update((f"column{j + 5}", v) for j, v in enumerate(cols[3:]))
        bdoc.add_relation(rel)
    return bdoc


def write_bioc_xml(docs: Iterable[Document], path) -> None:
    docs = list(docs)
    collection = to_bioc(docs, source=os.path.basename(str(path)))
    try:
        text = biocxml.dumps(collection)
    except ValueError as err:  # lxml: "All strings must be XML compatible" (control characters)
        bad = next((d.id for d in docs if _not_xml_safe(d)), None)
        raise CorpusFormatError(f"cannot be written as XML: {err}", path=str(path), doc_id=bad) from None
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _not_xml_safe(doc: Document) -> bool:
    try:
        biocxml.dumps(to_bioc([doc]))
        return False
    except ValueError:
        return True


def write_bioc_json(docs: Iterable[Document], path) -> None:
    collection = to_bioc(docs, source=os.path.basename(str(path)))
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        biocjson.dump(collection, f, indent=1, ensure_ascii=False)
