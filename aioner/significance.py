"""Paired significance tests over documents: is system A better than system B on the same gold standard?

* two-sided Wilcoxon signed-rank on per-document F1 (the AIONER paper's test, section 3.1);
* a paired bootstrap of the micro-F1 difference.

Entities, modes (strict, relaxed) and type maps are those of ``aioner.scoring``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .scoring import Entity, TypeMap, check_documents, map_types, matched


def _document_counts(gold, pred, mode, ids: list[str]):
    """(tp, predictions, gold mentions) per document, as an array in ``ids`` order."""
    import numpy as np

    row = {d: i for i, d in enumerate(ids)}
    counts = np.zeros((len(ids), 3), dtype=np.int64)
    for col, ents in enumerate((matched(gold, pred, mode), pred, gold)):
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


def per_document_f1(
    gold: Iterable[Entity],
    pred: Iterable[Entity],
    mode: str = "strict",
    *,
    documents: Iterable[str] | None = None,
    type_map: TypeMap | None = None,
) -> dict[str, float]:
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
    return {
        "test": "wilcoxon signed-rank (two-sided)",
        "mode": mode,
        "statistic": statistic,
        "p_value": p,
        "documents": len(ids),
        "differing_documents": differing,
        "mean_f1_a": float(a.mean()),
        "mean_f1_b": float(b.mean()),
    }


def paired_bootstrap(
    gold, pred_a, pred_b, mode: str = "strict", *, documents=None, type_map=None, n_resamples: int = 1000, seed: int = 0
) -> dict:
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
    return {
        "test": "paired bootstrap (two-sided)",
        "mode": mode,
        "p_value": (1 + extreme) / (n_resamples + 1),
        "delta_f1": delta,
        "ci95": [float(lo), float(hi)],
        "f1_a": float(_f1(ca.sum(0))),
        "f1_b": float(_f1(cb.sum(0))),
        "documents": len(ids),
        "n_resamples": n_resamples,
        "seed": seed,
    }
