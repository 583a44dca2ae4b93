"""Training recipes: which rows, which label set and which starting model each one uses.

* ``single``   one corpus, its own task (the paper's baseline).
* ``aioner``   the merged AIO training set: BioRED + the external corpora, one model.
* ``finetune`` an AIONER checkpoint fine-tuned on a corpus of unseen entity types:
               encoder and Dense+ReLU kept, output layer and CRF re-initialised
               (the paper's AIONER-Pretrained).
* ``merged``   the unseen-type corpus merged into the AIO set (AIONER-Merged).
* ``gerbera``  stage 1 on the target set together with a general-domain set (each its
               own task tag and labels), stage 2 on the target set alone.
* ``quickstart`` ``aioner`` on a few capped corpora: minutes on a 2-core CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aioner_scheme import AIOScheme, default_tasks
from dataset_scripts.aio import scheme_for
from dataset_scripts.build import SPLIT_NAMES, corpus_dataset, merged_dataset
from dataset_scripts.corpora import AIO_TRAINING_CORPORA, get_corpus

RECIPES = ("single", "aioner", "finetune", "merged", "gerbera", "quickstart")
QUICKSTART_CORPORA = ["BioRED", "GNormPlus", "NCBI-Disease", "BC5CDR-Chemical", "Species-800", "tmVar3"]
QUICKSTART_SAMPLE = {"BioRED": None, "GNormPlus": 80, "NCBI-Disease": 80, "BC5CDR-Chemical": 80,
                     "Species-800": 80, "tmVar3": 80}


@dataclass
class Data:
    """Rows for one training stage, the label names of their ``labels`` ids, and the scheme to train."""

    scheme: AIOScheme
    train: list[dict]
    train_labels: list[str]
    dev: list[dict]
    dev_labels: list[str]
    test_corpora: list[str] = field(default_factory=list)
    description: str = ""


def _rows(dd, split):
    if split not in dd:
        return [], []
    ds = dd[split]
    return ds.to_list(), ds.features["labels"].feature.names


def _merge(parts):
    """Concatenate (rows, label names) pairs; rows keep ids into a shared name list."""
    names: list[str] = []
    rows: list[dict] = []
    for part_rows, part_names in parts:
        index = {}
        for n in part_names:
            if n not in names:
                names.append(n)
            index[part_names.index(n)] = names.index(n)
        rows += [{**r, "labels": [index[i] for i in r["labels"]]} for r in part_rows]
    return rows, names


def single(corpus: str, sample=None, seed=0) -> Data:
    c = get_corpus(corpus)
    dd, _ = corpus_dataset(corpus, splits=_train_dev(corpus), sample=sample, seed=seed)
    train, names = _rows(dd, "train")
    dev, dev_names = _rows(dd, "validation")
    return Data(scheme_for(c), train, names, dev, dev_names, [corpus], f"single: {corpus}")


def aioner(corpora=None, sample=None, seed=0, dev_corpora=None, exclude_tests_of=None) -> Data:
    """``dev_corpora``: whose dev sentences select the model (default: every merged corpus').
    ``exclude_tests_of``: corpora whose test documents leave the training set (default: BioRED)."""
    corpora = corpora or AIO_TRAINING_CORPORA
    dd, _ = merged_dataset(corpora, sample=sample, seed=seed, exclude_tests_of=exclude_tests_of)
    train, names = _rows(dd, "train")
    dev, dev_names = _rows(dd, "validation")
    if dev_corpora:
        dev = [r for r in dev if r["corpus"] in dev_corpora]
    return Data(AIOScheme(), train, names, dev, dev_names, ["BioRED"], f"aioner: {', '.join(corpora)}")


def new_type_corpus(corpus: str, sample=None, seed=0) -> Data:
    """An unseen-type corpus on its own (the finetune recipe and the merged recipe's addition)."""
    dd, _ = corpus_dataset(corpus, splits=_train_dev(corpus), sample=sample, seed=seed)
    train, names = _rows(dd, "train")
    dev, dev_names = _rows(dd, "validation")
    c = get_corpus(corpus)
    return Data(AIOScheme({c.task: c.entity_types}), train, names, dev, dev_names, [corpus], f"new types: {corpus}")


def merged(corpus: str, aio_corpora=None, sample=None, seed=0) -> Data:
    base = aioner(aio_corpora, sample, seed)
    new = new_type_corpus(corpus, None, seed)
    tasks = {**default_tasks(), **new.scheme.to_dict()}
    train, names = _merge([(base.train, base.train_labels), (new.train, new.train_labels)])
    # Model selection on the new corpus' dev set: that is the task this recipe serves.
    return Data(AIOScheme(tasks), train, names, new.dev, new.dev_labels, [corpus],
                f"merged: {corpus} + AIO ({base.description})")


def gerbera_stage1(target: str, general: list[str], general_sample=None, seed=0, sample=None) -> Data:
    tgt = single(target, sample, seed)  # the same target documents as stage 2
    parts = [(tgt.train, tgt.train_labels)]
    tasks = tgt.scheme.to_dict()
    for g in general:
        dd, _ = corpus_dataset(g, splits=["train"], sample=general_sample, seed=seed)
        parts.append(_rows(dd, "train"))
        c = get_corpus(g)
        tasks[c.task] = c.entity_types
    train, names = _merge(parts)
    return Data(AIOScheme(tasks), train, names, tgt.dev, tgt.dev_labels, [target],
                f"gerbera stage 1: {target} + {', '.join(general)}")


def _train_dev(corpus: str) -> list[str]:
    c = get_corpus(corpus)
    if c.dev_from_train:
        return ["train", "dev"]
    dev = [s for s in c.splits if SPLIT_NAMES.get(s) == "validation"]
    return ["train", *dev] if "train" in c.splits else dev

