"""Predicting: a tagger's entities on a corpus split, kept with the documents and gold they belong to.

``predict_corpus`` reads a split (``corpus_documents``: texts, passages, gold mentions mapped to the
corpus' AIO task, documents keyed by position), tags it with the corpus' task and times the tagging.
It returns a ``CorpusPrediction``: score it with ``aioner.evaluation.score_predictions`` (strict and
relaxed, per type), compare two with ``aioner.significance``, or post-process its entities
(a gazetteer, a type filter) before scoring, all without tagging again.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .scoring import Entity


def corpus_documents(corpus_name: str, split: str = "test"):
    """(texts, passages, gold entities) of a corpus split, gold mapped to the corpus' AIO task.

    PubTator corpora are read as documents (title and abstract segmented apart, as in
    real use); pre-tokenized corpora are rebuilt from their sentences. Documents are
    keyed by position, since some files repeat an id (NLM-Chem: one per passage).
    """
    from dataset_scripts.aio import (
        SplitReport,
        convert_split,
        read_split,
        rows_to_documents,
        scheme_for,
        task_mentions,
    )
    from dataset_scripts.corpora import get_corpus

    corpus = get_corpus(corpus_name)
    texts, passages, gold = [], [], []
    if corpus.format == "pubtator":
        report = SplitReport(corpus.name, split)
        docs, path, _ = read_split(corpus, split, strict=False)  # "dev" of a corpus without one: train.py's
        for i, doc in enumerate(docs):
            gold += [(str(i), m.start, m.end, m.type) for m in task_mentions(doc, corpus, report, path)]
    else:
        rows, _ = convert_split(corpus, split)
        docs = list(rows_to_documents(rows, scheme_for(corpus).labels))
        for i, doc in enumerate(docs):
            gold += [(str(i), m.start, m.end, m.type) for m in doc.mentions]
    for doc in docs:
        texts.append(doc.text)
        passages.append([(p.offset, p.end) for p in doc.passages])
    return texts, passages, gold


def entity_tuples(predicted: Sequence[Sequence[dict]], types: Collection[str] | None = None) -> list[Entity]:
    """A tagger's output (one list of entity dicts per document) as ``(document, start, end, type)``,
    documents keyed by position (``"0"``, ``"1"``, ..., as ``corpus_documents`` keys the gold);
    ``types``: only the entities of these types."""
    return [
        (str(i), e["start"], e["end"], e["type"])
        for i, ents in enumerate(predicted)
        for e in ents
        if types is None or e["type"] in types
    ]


def corpus_task(tagger, corpus_name: str) -> str:
    """The task a tagger answers a corpus with: a model with a task named after the corpus (the MTL
    baseline: one output layer per dataset) uses it; an AIO model uses the corpus' task tag."""
    from dataset_scripts.corpora import get_corpus

    scheme = getattr(tagger, "scheme", None)
    return corpus_name if scheme is not None and corpus_name in scheme.tasks else get_corpus(corpus_name).task


@dataclass
class CorpusPrediction:
    """What a tagger predicted on a corpus split, with the documents and the gold standard."""

    corpus: str
    split: str
    task: str
    texts: list[str]
    passages: list[list[tuple[int, int]]]
    gold: list[Entity]  # mapped to the corpus' AIO types, documents keyed by position
    predicted: list[list[dict]]  # the tagger's entities, one list per document
    seconds: float  # tagging wall time

    @property
    def ids(self) -> list[str]:
        return [str(i) for i in range(len(self.texts))]

    def entities(self, types: Collection[str] | None = None) -> list[Entity]:
        return entity_tuples(self.predicted, types)


def predict_corpus(
    tagger, corpus_name: str, split: str = "test", task: str | None = None, *, limit: int | None = None, warmup: int = 0
) -> CorpusPrediction:
    """Tag a corpus split with ``tagger`` (``tag(texts, task, passages)``, e.g. a pipeline_aioner.AIONERTagger).

    ``task``: default ``corpus_task``. ``limit``: only the first N documents (and their gold).
    ``warmup``: tag the first N documents once, untimed, before the timed pass.
    """
    task = task or corpus_task(tagger, corpus_name)
    texts, passages, gold = corpus_documents(corpus_name, split)
    if limit is not None:
        texts, passages = texts[:limit], passages[:limit]
        gold = [g for g in gold if int(g[0]) < limit]
    if warmup:
        tagger.tag(texts[:warmup], task, passages[:warmup])
    start = time.time()
    predicted = tagger.tag(texts, task, passages)
    return CorpusPrediction(corpus_name, split, task, texts, passages, gold, predicted, time.time() - start)
