"""Evaluation end to end: a tagger on a corpus split, or a prediction file against a gold file.

* ``evaluate_corpus``: ``predict_corpus`` (``aioner.prediction``: tag the split) then
  ``score_predictions`` (strict and relaxed P/R/F1, per type). Callers that need the predictions
  (paired tests, post-processing) call the two themselves.
* ``score_files``: a PubTator (character offsets) or IOB (word offsets) prediction file against its
  gold file, after checking that both hold the same documents and text (``aioner-evaluate``).
* ``load_type_map``: raw corpus types -> AIO types, from a corpus name or a TSV file.

The metrics themselves (strict and relaxed matching, seqeval, the per-class report, tables) are
``aioner.scoring``; the significance tests are ``aioner.significance``.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .prediction import CorpusPrediction, predict_corpus
from .scoring import (
    MODES,
    Entity,
    TypeMap,
    check_documents,
    document_word_tags,
    error_breakdown,
    map_tags,
    map_types,
    per_class_report,
    score_entities,
    seqeval_scores,
)


# ----- files: PubTator (character offsets) and IOB (word offsets) -----
@dataclass
class Annotations:
    """A gold or predicted file, keyed by document."""

    ids: list[str]  # document keys in file order
    entities: list[Entity]  # raw types
    texts: dict[str, str] = field(default_factory=dict)  # PubTator: document text
    sentences: list[tuple[str, list[str], list[str], int]] = field(default_factory=list)  # IOB: key, words, tags, line
    problems: list[str] = field(default_factory=list)  # defects left out of a leniently read gold file


def _unique_keys(ids: Iterable[str]) -> list[str]:
    # Some files repeat an id (NLM-Chem: one block per passage, offsets per block), so
    # the k-th repeat is keyed "id#k" in both files and blocks pair up in file order.
    seen: Counter = Counter()
    keys = []
    for i in ids:
        keys.append(f"{i}#{seen[i]}" if seen[i] else i)
        seen[i] += 1
    return keys


def annotations_from_documents(docs: Iterable, problems: Iterable = ()) -> Annotations:
    """Annotations of ``dataset_scripts.documents.Document`` objects (PubTator, BioC readers)."""
    docs = list(docs)
    keys = _unique_keys(d.id for d in docs)
    return Annotations(
        keys,
        [(k, m.start, m.end, m.type) for k, d in zip(keys, docs) for m in d.mentions],
        texts={k: d.text for k, d in zip(keys, docs)},
        problems=[str(p) for p in problems],
    )


def read_pubtator_annotations(path, *, strict: bool = True) -> Annotations:
    from dataset_scripts.pubtator import read_pubtator

    stream = read_pubtator(path, strict=strict)
    docs = list(stream)
    return annotations_from_documents(docs, stream.problems)


def score_documents(
    gold_docs: Iterable, pred_docs: Iterable, mode: str = "strict", *, type_map: TypeMap | None = None
) -> dict:
    """score_entities on Documents (character offsets), after checking that every predicted
    document is a gold document (KeyError) with the same text (ValueError)."""
    gold, pred = annotations_from_documents(gold_docs), annotations_from_documents(pred_docs)
    _align(gold, pred, "pubtator", "predictions")
    return score_entities(gold.entities, pred.entities, mode, type_map=type_map, documents=gold.ids)


_AIO_OUTSIDE = re.compile(rb"(?<=\s)O-\S*(?=\s*$)")


def read_iob_annotations(path) -> Annotations:
    """Sentences of a word TAB tag file and their entities in word offsets.

    Documents are the ``-DOCSTART-`` sections when the file has them, else sentences;
    offsets count words from the start of the document. AIO outside labels (O-ALL) are
    rewritten to O first, since ``read_conll`` accepts only O, B-x and I-x.
    """
    from dataset_scripts.conll import iob_spans, read_conll

    lines = Path(path).read_bytes().split(b"\n")
    data = io.BytesIO(b"\n".join(_AIO_OUTSIDE.sub(b"O", line) for line in lines))
    data.name = str(path)  # errors name the file; line numbers are unchanged
    sentences = list(read_conll(data))
    by_section = any(s.doc_start for s in sentences)
    ann, doc, offset = Annotations([], []), -1, 0
    for i, s in enumerate(sentences):
        if not by_section or s.doc_start or i == 0:
            doc, offset = doc + 1, 0
            ann.ids.append(str(doc))
        ann.sentences.append((str(doc), s.words, s.tags, s.line))
        ann.entities += [(str(doc), offset + a, offset + b, t) for a, b, t in iob_spans(s.tags)]
        offset += len(s.words)
    return ann


def _align(gold: Annotations, pred: Annotations, fmt: str, pred_path) -> None:
    """Offsets only compare when both files hold the same text: check it, name what differs."""
    if fmt == "pubtator":
        check_documents(gold.ids, pred.ids)
        for k in pred.ids:
            if pred.texts[k].strip() and pred.texts[k] != gold.texts[k]:
                raise ValueError(
                    f"{pred_path}: the text of document {k} differs from the gold text, so offsets cannot be compared"
                )
        return
    if len(pred.sentences) != len(gold.sentences):
        raise ValueError(f"{pred_path}: {len(pred.sentences)} sentences where the gold file has {len(gold.sentences)}")
    for (_, gw, _, line), (_, pw, _, pline) in zip(gold.sentences, pred.sentences):
        if gw != pw:
            raise ValueError(f"{pred_path} line {pline}: the words differ from the gold sentence at line {line}")


def score_files(
    gold_path,
    pred_path,
    fmt: str = "pubtator",
    *,
    modes: Sequence[str] = MODES,
    type_map: TypeMap | None = None,
    per_class: bool = False,
    errors: bool = False,
) -> dict:
    """Score a prediction file against a gold file (PubTator or IOB).

    Returns ``{mode: score_entities(...)}`` for each mode, plus documents, the gold
    documents without a prediction block (their mentions count as missed), defects of
    the gold file (read leniently, like corpus_documents), for IOB ``seqeval`` (strict
    IOB2 on the word tags), with ``per_class`` the per-class report and with ``errors`` the strict
    errors by class (``error_breakdown``: type, boundary, both, missed / spurious).
    """
    if fmt not in ("pubtator", "iob"):
        raise ValueError(f"format must be 'pubtator' or 'iob', not {fmt!r}")
    for p in (gold_path, pred_path):
        if not Path(p).is_file():
            raise FileNotFoundError(f"no such file: {p}")
    if fmt == "pubtator":
        gold, pred = read_pubtator_annotations(gold_path, strict=False), read_pubtator_annotations(pred_path)
    else:
        gold, pred = read_iob_annotations(gold_path), read_iob_annotations(pred_path)
    _align(gold, pred, fmt, pred_path)
    result = {
        "format": fmt,
        "gold_file": str(gold_path),
        "pred_file": str(pred_path),
        "documents": len(gold.ids),
        "documents_without_prediction": sorted(set(gold.ids) - set(pred.ids)),
        "gold_problems": gold.problems,
    }
    for mode in modes:
        result[mode] = score_entities(gold.entities, pred.entities, mode, type_map=type_map, documents=gold.ids)
    if fmt == "iob":
        refs = [map_tags(tags, type_map) for _, _, tags, _ in gold.sentences]
        preds = [map_tags(tags, type_map, unknown="keep") for _, _, tags, _ in pred.sentences]
        result["seqeval"] = seqeval_scores(refs, preds)
    elif per_class:
        refs, preds = document_word_tags(
            gold.texts, map_types(gold.entities, type_map), map_types(pred.entities, type_map, unknown="keep")
        )
    if per_class:
        result["per_class"] = per_class_report(refs, preds)
    if errors:
        result["errors"] = error_breakdown(gold.entities, pred.entities, type_map=type_map, documents=gold.ids)
    return result


def load_type_map(spec: str | None) -> dict[str, str | None] | None:
    """A corpus name from ``dataset_scripts.corpora.CORPORA`` (its ``types``) or a TSV file
    of ``raw<TAB>aio`` lines (aio empty, ``None`` or ``-``: ignore the type; # comments)."""
    if spec is None:
        return None
    from dataset_scripts.corpora import CORPORA

    if spec in CORPORA:
        return dict(CORPORA[spec].types)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--type-map {spec!r} is neither a corpus ({', '.join(CORPORA)}) nor a file")
    type_map: dict[str, str | None] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) > 2 or not cols[0].strip():
            raise ValueError(f"{path} line {n}: expected 'raw<TAB>aio', got {line!r}")
        aio = cols[1].strip() if len(cols) == 2 else ""
        type_map[cols[0].strip()] = None if aio in ("", "None", "-") else aio
    return type_map


# ----- a tagger on a corpus split -----
def score_predictions(prediction: CorpusPrediction, types: Collection[str] | None = None) -> dict:
    """Strict and relaxed P/R/F1 (overall, per type) of a ``CorpusPrediction``, with its corpus, split,
    task, documents and tagging seconds. ``types``: score only the predictions of these types (the
    gold is kept whole, so another type's mentions count as missed)."""
    pred, ids = prediction.entities(types), prediction.ids
    return {
        "corpus": prediction.corpus,
        "split": prediction.split,
        "task": prediction.task,
        "documents": len(prediction.texts),
        "tagging_seconds": round(prediction.seconds, 2),
        "strict": score_entities(prediction.gold, pred, "strict", documents=ids),
        "relaxed": score_entities(prediction.gold, pred, "relaxed", documents=ids),
    }


def evaluate_corpus(tagger, corpus_name: str, split: str = "test", task: str | None = None) -> dict:
    """Strict and relaxed P/R/F1 of ``tagger`` (a pipeline_aioner.AIONERTagger) on a corpus split:
    ``predict_corpus`` then ``score_predictions``."""
    return score_predictions(predict_corpus(tagger, corpus_name, split, task))
