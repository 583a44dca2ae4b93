"""Scoring biomedical NER, as in AIONER (Luo et al., 2023, section 3.1): predictions in, numbers out.

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
* Where the strict errors are (``error_breakdown``): each missed gold mention and each wrong
  prediction is a type error, a boundary error, both, or missed / spurious.
* Markdown tables of these scores.

Where the predictions come from is elsewhere: ``aioner.prediction`` tags a corpus split,
``aioner.evaluation`` reads prediction files; paired significance tests over documents are in
``aioner.significance``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

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
        raise KeyError(
            f"gold type(s) {sorted(mapped.missing)} not in the type map {dict(type_map)}; "
            "map them (to None to ignore them)"
        )


def map_types(entities: Iterable[Entity], type_map: TypeMap | None = None, *, unknown: str = "error") -> list[Entity]:
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
def matched(gold: list[Entity], pred: list[Entity], mode: str) -> list[Entity]:
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


def score_entities(
    gold: Iterable[Entity],
    pred: Iterable[Entity],
    mode: str = "strict",
    *,
    type_map: TypeMap | None = None,
    documents: Iterable[str] | None = None,
) -> dict:
    """``{"overall": {...}, "per_type": {type: {...}}}`` with P/R/F1 and counts.

    ``documents``: the gold document ids; a prediction for any other document raises KeyError.
    """
    gold, pred = _prepare(gold, pred, type_map, documents)
    tp = Counter(e[3] for e in matched(gold, pred, mode))
    n_pred, n_gold = Counter(e[3] for e in pred), Counter(g[3] for g in gold)
    per_type = {t: prf(tp[t], n_pred[t], n_gold[t]) for t in sorted(n_gold.keys() | n_pred.keys())}
    return {"overall": prf(sum(tp.values()), len(pred), len(gold)), "per_type": per_type}


def check_documents(gold_ids: Iterable[str], pred_ids: Iterable[str]) -> None:
    """A prediction for a document the gold standard does not have is an error, not a false positive."""
    missing = set(pred_ids) - set(gold_ids)
    if missing:
        raise KeyError(
            f"predictions for {len(missing)} document(s) absent from the gold standard, e.g. {sorted(missing)[:5]}"
        )


# ----- word tags: seqeval and the per-class report -----
def _outside(tags: Sequence[str]) -> list[str]:
    return ["O" if t.startswith("O") else t for t in tags]


def _check_lengths(references, predictions) -> None:
    if len(references) != len(predictions):
        raise ValueError(f"{len(predictions)} predicted sequences for {len(references)} reference sequences")
    for i, (r, p) in enumerate(zip(references, predictions)):
        if len(r) != len(p):
            raise ValueError(f"sequence {i}: {len(p)} predicted tags for {len(r)} reference tags")


def seqeval_scores(
    references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], *, mode: str | None = "strict"
) -> dict:
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


def per_class_report(
    references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], *, collapse_types: bool = True
) -> dict:
    """Word-level P/R/F1 and support per class, accuracy, macro and weighted averages.

    ``collapse_types``: classes B, I and O (the transfer-learning paper's Table 5);
    otherwise one class per label (B-Gene, I-Gene, ..., O). O-* labels are always O.
    Averages follow scikit-learn's classification_report: macro = unweighted mean of
    the per-class values, weighted = mean weighted by gold support.
    """
    _check_lengths(references, predictions)
    cls = (lambda t: t[0]) if collapse_types else (lambda t: t)
    pairs = [(cls(r), cls(p)) for rs, ps in zip(references, predictions) for r, p in zip(_outside(rs), _outside(ps))]
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
        report[name] = {
            k: sum(weight(s) * s[k] for s in classes) / norm if norm else 0.0 for k in ("precision", "recall", "f1")
        }
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
        words = [
            w
            for sent in segment(text, cuts=edges, keep_together=[(s, e) for s, e, _ in spans[0] + spans[1]])
            for w in sent
        ]
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


# ----- where the strict errors are -----
ERROR_KINDS = ("type", "boundary", "boundary_type")  # plus "missed" (gold side) / "spurious" (predicted side)


def _error_kind(entity: Entity, others: list[Entity]) -> tuple[str, Entity | None]:
    """How ``entity`` (a strict error) relates to the other side's errors of its document: the same span
    with another type first, then an overlap of the same type, then an overlap of another type."""
    overlapping = [o for o in others if o[1] < entity[2] and entity[1] < o[2]]
    for kind, test in (
        ("type", lambda o: o[1:3] == entity[1:3]),
        ("boundary", lambda o: o[3] == entity[3]),
        ("boundary_type", lambda o: True),
    ):
        hit = next((o for o in overlapping if test(o)), None)
        if hit is not None:
            return kind, hit
    return "", None


def error_breakdown(
    gold: Iterable[Entity],
    pred: Iterable[Entity],
    *,
    type_map: TypeMap | None = None,
    documents: Iterable[str] | None = None,
) -> dict:
    """Every strict-mode error in exactly one class, to show where the F1 goes.

    A missed gold mention (false negative) and a wrong prediction (false positive) are each:
    ``type`` (a wrong prediction on exactly the gold span: "BRCA1" tagged Disease), ``boundary``
    (an overlapping one of the same type: "BRCA1 gene" for "BRCA1"), ``boundary_type`` (overlapping,
    another type), else ``missed`` (gold) or ``spurious`` (predicted). Errors are compared only with
    the other side's errors: a correct prediction is no boundary error of a gold mention it overlaps.
    The classes sum to strict FN and FP (``score_entities``); per type, false negatives count under
    the gold type and false positives under the predicted one. ``type_confusion``: gold -> predicted
    type of the ``type`` errors. (nervaluate's SemEval-2013 schemas count partial and type matches per
    schema, which do not partition the strict errors; hence this.)
    """
    gold, pred = _prepare(gold, pred, type_map, documents)
    gold_set, pred_set = set(gold), set(pred)
    errors = {"gold": [g for g in gold if g not in pred_set], "pred": [p for p in pred if p not in gold_set]}
    by_doc = {side: defaultdict(list) for side in errors}
    for side, ents in errors.items():
        for e in ents:
            by_doc[side][e[0]].append(e)
    blank = {"false_negatives": dict.fromkeys(ERROR_KINDS + ("missed",), 0)}
    blank["false_positives"] = dict.fromkeys(ERROR_KINDS + ("spurious",), 0)
    out = {k: dict(v) for k, v in blank.items()}
    per_type: dict[str, dict] = defaultdict(lambda: {k: dict(v) for k, v in blank.items()})
    confusion: Counter = Counter()
    for side, other, key, none in (
        ("gold", "pred", "false_negatives", "missed"),
        ("pred", "gold", "false_positives", "spurious"),
    ):
        for e in errors[side]:
            kind, hit = _error_kind(e, by_doc[other][e[0]])
            kind = kind or none
            out[key][kind] += 1
            per_type[e[3]][key][kind] += 1
            if side == "gold" and kind == "type":
                confusion[f"{e[3]} -> {hit[3]}"] += 1
    out["per_type"] = dict(sorted(per_type.items()))
    out["type_confusion"] = dict(confusion.most_common())
    return out


def format_errors(breakdown: dict) -> str:
    """An error_breakdown as Markdown: one row per side and type, the classes as columns."""
    lines = [
        "| errors | type | boundary | boundary + type | missed / spurious | total |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = [("all", breakdown)] + list(breakdown["per_type"].items())
    for name, r in rows:
        for key, label in (("false_negatives", "missed gold (FN)"), ("false_positives", "wrong predictions (FP)")):
            counts = list(r[key].values())
            lines.append(f"| {name}: {label} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    if breakdown["type_confusion"]:
        pairs = ", ".join(f"{k} {v}" for k, v in breakdown["type_confusion"].items())
        lines.append(f"\nType errors, gold -> predicted: {pairs}.")
    return "\n".join(lines)


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
        lines.append(
            f"| {name} | {s['gold']} | {s['pred']} | {s['tp']} | {100 * s['precision']:.2f} | "
            f"{100 * s['recall']:.2f} | {100 * s['f1']:.2f} |"
        )
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
