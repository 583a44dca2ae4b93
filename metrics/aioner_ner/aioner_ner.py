"""aioner_ner: entity-level P/R/F1 on IOB2 word tags, AIO labels allowed, offline.

The Hub ``seqeval`` metric must be downloaded (``evaluate.load("seqeval")`` needs the
network); this module lives in the repository and only needs the seqeval package, so
``evaluate.load("/abs/path/metrics/aioner_ner")`` works with HF_HUB_OFFLINE=1. Its
output has the Hub metric's shape. Two differences, both on purpose:

* every label starting with "O" (O, O-ALL, O-Gene: AIONER's task-specific outside
  labels) is outside, also for accuracy;
* the default decoding is seqeval's strict IOB2 mode (an I-X that does not continue a
  B-X/I-X starts no entity), as entity-level evaluation in AIONER counts exact spans;
  ``mode=None`` gives conlleval's lenient decoding, the Hub metric's default.

Self-contained (no import of the aioner package): evaluate copies this file into its
module cache, away from the repository.
"""

from collections import Counter

import datasets
import evaluate
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

_DESCRIPTION = """Entity-level precision, recall and F1 (per type and micro overall) and word accuracy
for IOB2 tag sequences, with AIONER's O-* outside labels treated as O."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of predicted tag sequences (one list of str per sentence).
    references: list of gold tag sequences, same lengths.
    mode: "strict" (default, seqeval strict IOB2) or None (conlleval-style lenient decoding).
Returns:
    overall_precision, overall_recall, overall_f1, overall_accuracy, and for each entity
    type a dict {"precision", "recall", "f1", "number"} (number = gold entities).
Example:
    >>> metric = evaluate.load("/abs/path/metrics/aioner_ner")
    >>> metric.compute(predictions=[["B-Gene", "O-ALL"]], references=[["B-Gene", "O"]])["overall_f1"]
    1.0
"""

_CITATION = """@article{luo2023aioner,
  title={AIONER: all-in-one scheme-based biomedical named entity recognition using deep learning},
  author={Luo, Ling and Wei, Chih-Hsuan and Lai, Po-Ting and Leaman, Robert and Chen, Qingyu and Lu, Zhiyong},
  journal={Bioinformatics}, volume={39}, number={5}, pages={btad310}, year={2023}
}
@misc{seqeval, title={seqeval: A Python framework for sequence labeling evaluation},
  author={Hiroki Nakayama}, year={2018}, url={https://github.com/chakki-works/seqeval}}"""


def _outside(seq):
    return ["O" if tag.startswith("O") else tag for tag in seq]


def _prf(tp, n_pred, n_gold):
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AionerNer(evaluate.Metric):
    def _info(self):
        seq = datasets.Sequence(datasets.Value("string", id="label"), id="sequence")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": seq, "references": seq}),
            codebase_urls=["https://github.com/ncbi/AIONER", "https://github.com/chakki-works/seqeval"],
        )

    def _compute(self, predictions, references, mode="strict"):
        if mode not in ("strict", None):
            raise ValueError(f"mode must be 'strict' or None, not {mode!r}")
        refs, preds = [_outside(s) for s in references], [_outside(s) for s in predictions]
        for i, (r, p) in enumerate(zip(refs, preds)):
            if len(r) != len(p):
                raise ValueError(f"sequence {i}: {len(p)} predicted tags for {len(r)} reference tags")

        # Entity sets, counted by hand so that "no entity at all" gives zeros, not warnings.
        def entities(seqs):
            if mode == "strict":
                return {(e.sent_id, e.tag, e.start, e.end) for s in Entities(seqs, IOB2).entities for e in s}
            return {(0, t, s, e) for t, s, e in get_entities(seqs)}  # offsets over joined sentences

        gold, pred = entities(refs), entities(preds)
        tp = Counter(e[1] for e in gold & pred)
        n_gold, n_pred = Counter(e[1] for e in gold), Counter(e[1] for e in pred)
        out = {}
        for t in sorted(n_gold.keys() | n_pred.keys()):
            p, r, f = _prf(tp[t], n_pred[t], n_gold[t])
            out[t] = {"precision": p, "recall": r, "f1": f, "number": n_gold[t]}
        p, r, f = _prf(len(gold & pred), len(pred), len(gold))
        words = sum(len(s) for s in refs)
        correct = sum(a == b for rs, ps in zip(refs, preds) for a, b in zip(rs, ps))
        out.update(
            overall_precision=p, overall_recall=r, overall_f1=f, overall_accuracy=correct / words if words else 0.0
        )
        return out
