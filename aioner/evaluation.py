"""Evaluation of biomedical NER, as in AIONER (Luo et al., 2023, section 3.1).

* Entity-level precision, recall and F1, per type and micro overall, on entities
  ``(document, start, end, type)`` (character offsets for PubTator, word offsets for IOB):

  - strict: a prediction is right when its document, offsets and type equal a gold mention's;
  - relaxed: the rule of AIONER's ``src/Test_Evaluation.py``, made deterministic.
    Duplicates are removed and predictions taken in (document, start, end, type)
    order; each is matched to the first gold mention, in the same order, of the same
    document and type that it overlaps (``gold.start < pred.end and pred.start <
    gold.end``: at least one shared character) and that no earlier prediction matched.
    Each gold mention is used once, so two predictions inside one gold mention give one
    true positive and one false positive. P = matched / predictions, R = matched / gold.

  Where this differs from ``Test_Evaluation.py`` (deliberately, all rare or defects):
  it tests ``max(starts) <= min(ends)`` on end-exclusive offsets, so a prediction that
  only *touches* a gold mention (``pred.end == gold.start``) counts as relaxed match;
  it compares types lower-cased; it keeps duplicate lines (a duplicated gold mention
  lowers recall); it walks predictions and gold in file order, not offset order
  (the same for offset-sorted files); and it skips gold documents that have no block in
  the prediction file, where here their mentions count as missed.
* Raw corpus types mapped to AIO types (``type_map``; a type mapped to None is ignored).
* seqeval entity scores on word tags (strict IOB2) and a per-class report (B/I/O P/R/F1
  with macro and weighted averages, as Table 5 of the transfer-learning paper).
  AIO outside labels (``O-ALL``, ``O-Gene``: any label starting with "O") are "O".
* Paired significance tests over documents: two-sided Wilcoxon signed-rank on
  per-document F1 (the AIONER paper's test) and a paired bootstrap.
"""

from __future__ import annotations

import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

Entity = tuple[str, int, int, str]  # (document id, start, end, type)
TypeMap = Mapping[str, "str | None"]
MODES = ("strict", "relaxed")


def prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "pred": n_pred, "gold": n_gold}


# ----- type mapping -----
def _type_mapper(type_map: TypeMap | None, unknown: str) -> Callable[[str], str | None]:
    """raw type -> AIO type, None to drop. A type already an AIO target passes through.

    Any other type: ``unknown="error"`` (gold: nothing may vanish silently) collects it
    for one KeyError; ``"keep"`` (predictions) keeps it, so it shows as a false positive.
    """
    if type_map is None:
        return lambda t: t
    targets = {v for v in type_map.values() if v}
    missing: set[str] = set()

    def mapped(t: str) -> str | None:
        if t in type_map:
            return type_map[t]
        if t in targets or unknown == "keep":
            return t
        missing.add(t)
        return None

    mapped.missing = missing  # type: ignore[attr-defined]
    return mapped


def _raise_missing(mapped, type_map: TypeMap) -> None:
    if getattr(mapped, "missing", None):
        raise KeyError(f"gold type(s) {sorted(mapped.missing)} not in the type map {dict(type_map)}; "
                       "map them (to None to ignore them)")


def map_types(entities: Iterable[Entity], type_map: TypeMap | None = None, *,
              unknown: str = "error") -> list[Entity]:
    """Entities with raw types replaced by ``type_map[type]``; types mapped to None are dropped."""
    mapped = _type_mapper(type_map, unknown)
    out = [(d, s, e, m) for d, s, e, t in entities if (m := mapped(t)) is not None]
    _raise_missing(mapped, type_map)
    return out


def map_tags(tags: Sequence[str], type_map: TypeMap | None = None, *, unknown: str = "error") -> list[str]:
    """Word tags with types mapped (B-Raw -> B-AIO; mapped to None -> O) and O-* labels as O."""
    mapped = _type_mapper(type_map, unknown)
    out = []
    for tag in tags:
        t = None if tag.startswith("O") else mapped(tag[2:])
        out.append("O" if t is None else f"{tag[:2]}{t}")
    _raise_missing(mapped, type_map)
    return out


# ----- entity matching -----
def _matched(gold: list[Entity], pred: list[Entity], mode: str) -> list[Entity]:
    """Predictions counted as true positives; gold and pred sorted and deduplicated."""
    if mode not in MODES:
        raise ValueError(f"mode must be 'strict' or 'relaxed', not {mode!r}")
    if mode == "strict":
        gold_set = set(gold)
        return [e for e in pred if e in gold_set]
    by_doc_type: dict[tuple[str, str], list[Entity]] = defaultdict(list)
    for g in gold:
        by_doc_type[(g[0], g[3])].append(g)
    used, hits = set(), []
    for e in pred:
        for g in by_doc_type[(e[0], e[3])]:
            if g not in used and g[1] < e[2] and e[1] < g[2]:
                used.add(g)
                hits.append(e)
                break
    return hits


def _prepare(gold, pred, type_map, documents) -> tuple[list[Entity], list[Entity]]:
    gold = sorted(set(map_types(gold, type_map)))
    pred = sorted(set(map_types(pred, type_map, unknown="keep")))
    if documents is not None:
        check_documents(documents, {e[0] for e in pred})
    return gold, pred


def score_entities(gold: Iterable[Entity], pred: Iterable[Entity], mode: str = "strict", *,
                   type_map: TypeMap | None = None, documents: Iterable[str] | None = None) -> dict:
    """``{"overall": {...}, "per_type": {type: {...}}}`` with P/R/F1 and counts.

    ``documents``: the gold document ids; a prediction for any other document raises KeyError.
    """
    gold, pred = _prepare(gold, pred, type_map, documents)
    tp = Counter(e[3] for e in _matched(gold, pred, mode))
    n_pred, n_gold = Counter(e[3] for e in pred), Counter(g[3] for g in gold)
    per_type = {t: prf(tp[t], n_pred[t], n_gold[t]) for t in sorted(n_gold.keys() | n_pred.keys())}
    return {"overall": prf(sum(tp.values()), len(pred), len(gold)), "per_type": per_type}


def check_documents(gold_ids: Iterable[str], pred_ids: Iterable[str]) -> None:
    """A prediction for a document the gold standard does not have is an error, not a false positive."""
    missing = set(pred_ids) - set(gold_ids)
    if missing:
        raise KeyError(f"predictions for {len(missing)} document(s) absent from the gold standard, "
                       f"e.g. {sorted(missing)[:5]}")


# ----- word tags: seqeval and the per-class report -----
def _outside(tags: Sequence[str]) -> list[str]:
    return ["O" if t.startswith("O") else t for t in tags]


def _check_lengths(references, predictions) -> None:
    if len(references) != len(predictions):
        raise ValueError(f"{len(predictions)} predicted sequences for {len(references)} reference sequences")
    for i, (r, p) in enumerate(zip(references, predictions)):
        if len(r) != len(p):
            raise ValueError(f"sequence {i}: {len(p)} predicted tags for {len(r)} reference tags")


def seqeval_scores(references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], *,
                   mode: str | None = "strict") -> dict:
    """Entity scores on word tags, shaped like the Hub ``seqeval`` metric's output.

    mode="strict": seqeval's strict IOB2 decoding (an I-X not after B-X/I-X starts no
    entity); mode=None: conlleval's lenient decoding.
    """
    from seqeval.metrics.sequence_labeling import get_entities
    from seqeval.scheme import IOB2, Entities

    _check_lengths(references, predictions)
    refs, preds = [_outside(s) for s in references], [_outside(s) for s in predictions]

    def entities(seqs):
        if mode == "strict":
            return {e.to_tuple() for sent in Entities(seqs, IOB2).entities for e in sent}
        # conlleval: sentences are joined with an O between them, so offsets stay unique
        return set(get_entities(seqs))

    gold, pred = entities(refs), entities(preds)
    type_of = (lambda e: e[1]) if mode == "strict" else (lambda e: e[0])
    tp = Counter(type_of(e) for e in gold & pred)
    n_gold, n_pred = Counter(map(type_of, gold)), Counter(map(type_of, pred))
    out = {}
    for t in sorted(n_gold.keys() | n_pred.keys()):
        s = prf(tp[t], n_pred[t], n_gold[t])
        out[t] = {"precision": s["precision"], "recall": s["recall"], "f1": s["f1"], "number": n_gold[t]}
    overall = prf(len(gold & pred), len(pred), len(gold))
    n_words = sum(len(s) for s in refs)
    correct = sum(a == b for r, p in zip(refs, preds) for a, b in zip(r, p))
    out.update({f"overall_{k}": overall[k] for k in ("precision", "recall", "f1")})
    out["overall_accuracy"] = correct / n_words if n_words else 0.0
    return out


def per_class_report(references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], *,
                     collapse_types: bool = True) -> dict:
    """Word-level P/R/F1 and support per class, accuracy, macro and weighted averages.

    ``collapse_types``: classes B, I and O (the transfer-learning paper's Table 5);
    otherwise one class per label (B-Gene, I-Gene, ..., O). O-* labels are always O.
    Averages follow scikit-learn's classification_report: macro = unweighted mean of
    the per-class values, weighted = mean weighted by gold support.
    """
    _check_lengths(references, predictions)
    cls = (lambda t: t[0]) if collapse_types else (lambda t: t)
    pairs = [(cls(r), cls(p)) for rs, ps in zip(references, predictions)
             for r, p in zip(_outside(rs), _outside(ps))]
    gold, pred = Counter(r for r, _ in pairs), Counter(p for _, p in pairs)
    tp = Counter(r for r, p in pairs if r == p)
    report = {}
    for c in sorted(gold.keys() | pred.keys()):
        s = prf(tp[c], pred[c], gold[c])
        report[c] = {"precision": s["precision"], "recall": s["recall"], "f1": s["f1"], "support": gold[c]}
    classes, total = list(report.values()), len(pairs)
    report["accuracy"] = sum(tp.values()) / total if total else 0.0
    for name, weight in (("macro avg", lambda s: 1.0), ("weighted avg", lambda s: s["support"])):
        norm = sum(weight(s) for s in classes)
        report[name] = {k: sum(weight(s) * s[k] for s in classes) / norm if norm else 0.0
                        for k in ("precision", "recall", "f1")}
        report[name]["support"] = total
    return report


def document_word_tags(texts: Mapping[str, str], gold: Iterable[Entity], pred: Iterable[Entity]):
    """(gold tags, predicted tags) per sentence of character-offset documents.

    Words come from ``aioner_text.segment`` (AIONER's tokenization) with forced word
    boundaries at every gold and predicted mention edge, and no sentence boundary inside
    a mention, so every mention is a whole run of words. Nested mentions cannot be
    tagged: the earlier-starting (then longer) one wins.
    """
    from bisect import bisect_left

    from aioner_text import segment

    by_doc: dict[str, tuple[list, list]] = {k: ([], []) for k in texts}
    for side, ents in enumerate((gold, pred)):
        for d, s, e, t in ents:
            by_doc[d][side].append((s, e, t))
    refs, preds = [], []
    for doc, text in texts.items():
        spans = by_doc[doc]
        edges = {x for side in spans for s, e, _ in side for x in (s, e)}
        words = [w for sent in segment(text, cuts=edges, keep_together=[(s, e) for s, e, _ in spans[0] + spans[1]])
                 for w in sent]
        starts = [w[0] for w in words]
        tags = [["O"] * len(words), ["O"] * len(words)]
        for side in (0, 1):
            for s, e, t in sorted(spans[side], key=lambda m: (m[0], -m[1])):
                i = j = bisect_left(starts, s)
                while j < len(words) and words[j][1] <= e:
                    j += 1
                if j > i and all(x == "O" for x in tags[side][i:j]):
                    tags[side][i:j] = [f"B-{t}"] + [f"I-{t}"] * (j - i - 1)
        # one sequence per document: sentence edges do not matter to word-level scores
        refs.append(tags[0])
        preds.append(tags[1])
    return refs, preds


# ----- paired significance tests over documents -----
def _document_counts(gold, pred, mode, ids: list[str]):
    """(tp, predictions, gold mentions) per document, as an array in ``ids`` order."""
    import numpy as np

    row = {d: i for i, d in enumerate(ids)}
    counts = np.zeros((len(ids), 3), dtype=np.int64)
    for col, ents in enumerate((_matched(gold, pred, mode), pred, gold)):
        for e in ents:
            counts[row[e[0]], col] += 1
    return counts


def _paired_counts(gold, pred_a, pred_b, mode, documents, type_map):
    gold = sorted(set(map_types(gold, type_map)))
    pred_a, pred_b = (sorted(set(map_types(p, type_map, unknown="keep"))) for p in (pred_a, pred_b))
    if documents is not None:  # the gold documents; those with gold mentions always take part
        ids = list(dict.fromkeys([*documents, *(g[0] for g in gold)]))
        check_documents(ids, {e[0] for e in pred_a + pred_b})
    else:
        ids = sorted({e[0] for e in gold + pred_a + pred_b})
    if not ids:
        raise ValueError("no documents to compare")
    return ids, _document_counts(gold, pred_a, mode, ids), _document_counts(gold, pred_b, mode, ids)


def _f1(counts):
    """Micro F1 = 2 TP / (predictions + gold), 0 where both are 0 (works on arrays too)."""
    import numpy as np

    tp, n_pred, n_gold = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = n_pred + n_gold
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def _document_f1(counts):
    """F1 per document row; 1.0 for a document with neither gold nor predicted mentions
    (the system was right to find nothing, and a spurious mention there costs it)."""
    import numpy as np

    return np.where(counts[:, 1] + counts[:, 2] == 0, 1.0, _f1(counts))


def per_document_f1(gold: Iterable[Entity], pred: Iterable[Entity], mode: str = "strict", *,
                    documents: Iterable[str] | None = None, type_map: TypeMap | None = None) -> dict[str, float]:
    """F1 of each document (1.0 where the document has neither gold nor predicted mentions)."""
    ids, counts, _ = _paired_counts(list(gold), list(pred), [], mode, documents, type_map)
    return dict(zip(ids, _document_f1(counts).tolist()))


def wilcoxon_test(gold, pred_a, pred_b, mode: str = "strict", *, documents=None, type_map=None) -> dict:
    """Two-sided Wilcoxon signed-rank test on per-document F1 of two systems (AIONER, 3.1).

    Documents where both systems have the same F1 carry no information and are dropped
    (scipy's zero_method="wilcox"); when every document ties, p = 1.
    """
    from scipy.stats import wilcoxon

    ids, ca, cb = _paired_counts(list(gold), list(pred_a), list(pred_b), mode, documents, type_map)
    a, b = _document_f1(ca), _document_f1(cb)
    differing = int((a != b).sum())
    if differing == 0:
        statistic, p = 0.0, 1.0
    else:
        res = wilcoxon(a, b, alternative="two-sided")
        statistic, p = float(res.statistic), float(res.pvalue)
    return {"test": "wilcoxon signed-rank (two-sided)", "mode": mode, "statistic": statistic, "p_value": p,
            "documents": len(ids), "differing_documents": differing,
            "mean_f1_a": float(a.mean()), "mean_f1_b": float(b.mean())}


def paired_bootstrap(gold, pred_a, pred_b, mode: str = "strict", *, documents=None, type_map=None,
                     n_resamples: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap over documents of the micro-F1 difference delta = F1(a) - F1(b).

    Documents are resampled with replacement (numpy generator seeded with ``seed``);
    both systems are scored on the same resample. Two-sided p-value of the centred test
    (H0: delta = 0): ``(1 + #{|delta_i - delta| >= |delta|}) / (n_resamples + 1)``, so
    identical systems give p = 1. Also returns the 95% percentile interval of delta.
    """
    import numpy as np

    ids, ca, cb = _paired_counts(list(gold), list(pred_a), list(pred_b), mode, documents, type_map)
    delta = float(_f1(ca.sum(0)) - _f1(cb.sum(0)))
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, n_resamples, 200):  # chunks keep memory at 200 x documents
        idx = rng.integers(0, len(ids), size=(min(200, n_resamples - start), len(ids)))
        deltas.append(_f1(ca[idx].sum(1)) - _f1(cb[idx].sum(1)))
    deltas = np.concatenate(deltas)
    extreme = int(np.sum(np.abs(deltas - delta) >= abs(delta) - 1e-12))
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return {"test": "paired bootstrap (two-sided)", "mode": mode, "p_value": (1 + extreme) / (n_resamples + 1),
            "delta_f1": delta, "ci95": [float(lo), float(hi)], "f1_a": float(_f1(ca.sum(0))),
            "f1_b": float(_f1(cb.sum(0))), "documents": len(ids), "n_resamples": n_resamples, "seed": seed}


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
    return Annotations(keys, [(k, m.start, m.end, m.type) for k, d in zip(keys, docs) for m in d.mentions],
                       texts={k: d.text for k, d in zip(keys, docs)}, problems=[str(p) for p in problems])


def read_pubtator_annotations(path, *, strict: bool = True) -> Annotations:
    from dataset_scripts.pubtator import read_pubtator

    stream = read_pubtator(path, strict=strict)
    docs = list(stream)
    return annotations_from_documents(docs, stream.problems)


def score_documents(gold_docs: Iterable, pred_docs: Iterable, mode: str = "strict", *,
                    type_map: TypeMap | None = None) -> dict:
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
                raise ValueError(f"{pred_path}: the text of document {k} differs from the gold text, "
                                 "so offsets cannot be compared")
        return
    if len(pred.sentences) != len(gold.sentences):
        raise ValueError(f"{pred_path}: {len(pred.sentences)} sentences where the gold file has "
                         f"{len(gold.sentences)}")
    for (_, gw, _, line), (_, pw, _, pline) in zip(gold.sentences, pred.sentences):
        if gw != pw:
            raise ValueError(f"{pred_path} line {pline}: the words differ from the gold sentence at line {line}")


def score_files(gold_path, pred_path, fmt: str = "pubtator", *, modes: Sequence[str] = MODES,
                type_map: TypeMap | None = None, per_class: bool = False) -> dict:
    """Score a prediction file against a gold file (PubTator or IOB).

    Returns ``{mode: score_entities(...)}`` for each mode, plus documents, the gold
    documents without a prediction block (their mentions count as missed), defects of
    the gold file (read leniently, like corpus_documents), for IOB ``seqeval`` (strict
    IOB2 on the word tags) and with ``per_class`` the per-class report.
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
    result = {"format": fmt, "gold_file": str(gold_path), "pred_file": str(pred_path),
              "documents": len(gold.ids),
              "documents_without_prediction": sorted(set(gold.ids) - set(pred.ids)),
              "gold_problems": gold.problems}
    for mode in modes:
        result[mode] = score_entities(gold.entities, pred.entities, mode, type_map=type_map, documents=gold.ids)
    if fmt == "iob":
        refs = [map_tags(tags, type_map) for _, _, tags, _ in gold.sentences]
        preds = [map_tags(tags, type_map, unknown="keep") for _, _, tags, _ in pred.sentences]
        result["seqeval"] = seqeval_scores(refs, preds)
    elif per_class:
        refs, preds = document_word_tags(gold.texts, map_types(gold.entities, type_map),
                                         map_types(pred.entities, type_map, unknown="keep"))
    if per_class:
        result["per_class"] = per_class_report(refs, preds)
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


# ----- tables -----
def format_table(results: Mapping[str, dict], types: list[str] | None = None) -> str:
    """A Markdown table of F1 (in %) per system: overall then per type."""
    types = types or sorted({t for r in results.values() for t in r["per_type"]})
    head = "| system | overall | " + " | ".join(types) + " |"
    lines = [head, "|" + "---|" * (len(types) + 2)]
    for name, r in results.items():
        cells = [f"{100 * r['per_type'][t]['f1']:.2f}" if t in r["per_type"] else "–" for t in types]
        lines.append(f"| {name} | {100 * r['overall']['f1']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(score: dict) -> str:
    """One score_entities result as Markdown: counts and P/R/F1 (%) per type, then micro overall."""
    lines = ["| type | gold | pred | TP | P | R | F1 |", "|---|---:|---:|---:|---:|---:|---:|"]
    rows = list(score["per_type"].items()) + [("**overall (micro)**", score["overall"])]
    for name, s in rows:
        lines.append(f"| {name} | {s['gold']} | {s['pred']} | {s['tp']} | {100 * s['precision']:.2f} | "
                     f"{100 * s['recall']:.2f} | {100 * s['f1']:.2f} |")
    return "\n".join(lines)


def format_per_class(report: dict) -> str:
    """A per_class_report as Markdown, four decimals like the transfer-learning paper's Table 5."""
    lines = ["| class | P | R | F1 | support |", "|---|---:|---:|---:|---:|"]
    for name, s in report.items():
        if name == "accuracy":
            lines.append(f"| accuracy | – | – | {s:.4f} | {report['macro avg']['support']} |")
        else:
            lines.append(f"| {name} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |")
    return "\n".join(lines)


# ----- scoring a tagger on a corpus' test split -----
def corpus_documents(corpus_name: str, split: str = "test"):
    """(texts, passages, gold entities) of a corpus split, gold mapped to the corpus' AIO task.

    PubTator corpora are read as documents (title and abstract segmented apart, as in
    real use); pre-tokenized corpora are rebuilt from their sentences. Documents are
    keyed by position, since some files repeat an id (NLM-Chem: one per passage).
    """
    from dataset_scripts.aio import SplitReport, convert_split, rows_to_documents, task_mentions
    from dataset_scripts.corpora import fetch, get_corpus
    from dataset_scripts.pubtator import read_pubtator

    corpus = get_corpus(corpus_name)
    texts, passages, gold = [], [], []
    if corpus.format == "pubtator":
        report = SplitReport(corpus.name, split)
        path = fetch(corpus.splits[split])
        docs = list(read_pubtator(path, strict=False))
        for i, doc in enumerate(docs):
            gold += [(str(i), m.start, m.end, m.type) for m in task_mentions(doc, corpus, report, str(path))]
    else:
        rows, _ = convert_split(corpus, split)
        from dataset_scripts.aio import scheme_for

        docs = list(rows_to_documents(rows, scheme_for(corpus).labels))
        for i, doc in enumerate(docs):
            gold += [(str(i), m.start, m.end, m.type) for m in doc.mentions]
    for doc in docs:
        texts.append(doc.text)
        passages.append([(p.offset, p.end) for p in doc.passages])
    return texts, passages, gold


def evaluate_corpus(tagger, corpus_name: str, split: str = "test", task: str | None = None) -> dict:
    """Strict and relaxed P/R/F1 of ``tagger`` (a pipeline_aioner.AIONERTagger) on a corpus split."""
    import time

    from dataset_scripts.corpora import get_corpus

    # A model with a task named after the corpus (the MTL baseline: one output layer per dataset) tags
    # with it; an AIO model tags with the corpus' task tag.
    scheme = getattr(tagger, "scheme", None)
    task = task or (corpus_name if scheme is not None and corpus_name in scheme.tasks else get_corpus(corpus_name).task)
    texts, passages, gold = corpus_documents(corpus_name, split)
    start = time.time()
    predicted = tagger.tag(texts, task, passages)
    seconds = time.time() - start
    pred = [(str(i), e["start"], e["end"], e["type"]) for i, ents in enumerate(predicted) for e in ents]
    ids = [str(i) for i in range(len(texts))]
    return {"corpus": corpus_name, "split": split, "task": task, "documents": len(texts),
            "tagging_seconds": round(seconds, 2),
            "strict": score_entities(gold, pred, "strict", documents=ids),
            "relaxed": score_entities(gold, pred, "relaxed", documents=ids)}
