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
* ``mtl``      the multi-task baseline the paper compares against: the same corpora as
               ``aioner``, each its own task named after the corpus (one output layer per
               dataset, no task tags; ``AIONERConfig(output_layers="per_task")``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from aioner_scheme import AIOScheme, default_tasks, outside_label
from dataset_scripts.aio import document_ids_of_tests, scheme_for
from dataset_scripts.corpora import AIO_TRAINING_CORPORA, CorpusUnavailableError, get_corpus
from dataset_scripts.hf_datasets import SPLIT_NAMES, corpus_dataset, merged_dataset

RECIPES = ("single", "aioner", "finetune", "merged", "gerbera", "quickstart", "mtl")
QUICKSTART_CORPORA = ["BioRED", "GNormPlus", "NCBI-Disease", "BC5CDR-Chemical", "Species-800", "tmVar3"]
QUICKSTART_SAMPLE = {
    "BioRED": None,
    "GNormPlus": 80,
    "NCBI-Disease": 80,
    "BC5CDR-Chemical": 80,
    "Species-800": 80,
    "tmVar3": 80,
}


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


def mtl(corpora=None, sample=None, seed=0, exclude_tests_of=None) -> Data:
    """One task per dataset (its name; its entity types; ``O-<dataset>`` outside), for per-task output layers.

    Any corpus can take part, AIO or not (AnatEM, JNLPBA, CoNLL-2003). ``sample``: one fraction or
    count, or a dict per corpus, as for ``aioner``. ``exclude_tests_of``: corpora whose test documents
    leave every training split (default: BioRED, as for the AIO model).
    """
    corpora = list(corpora or AIO_TRAINING_CORPORA)
    exclude = document_ids_of_tests(exclude_tests_of if exclude_tests_of is not None else ["BioRED"])
    tasks, parts = {}, {"train": [], "validation": []}
    for name in corpora:
        c = get_corpus(name)
        share = sample.get(name) if isinstance(sample, dict) else sample
        try:
            dd, _ = corpus_dataset(name, exclude_ids=exclude, splits=_train_dev(name), sample=share, seed=seed)
        except CorpusUnavailableError as err:  # NLM-Chem's training file, offline: as merged_dataset does
            print(f"[mtl] {name} left out: {err}", file=sys.stderr)
            continue
        tasks[name] = scheme_for(c).tasks[c.task]
        for split in parts:
            rows, names = _rows(dd, split)
            parts[split].append((rows, names, name))
    scheme = AIOScheme(tasks)

    def as_dataset_task(rows, names, name):
        """The corpus' rows relabelled for its own task: ``O-<type task>`` becomes ``O-<corpus>``."""
        out_id = scheme.label2id[outside_label(name)]
        ids = [out_id if n.startswith("O-") else scheme.label2id.get(n) for n in names]
        out = [{**r, "task": name, "labels": [ids[i] for i in r["labels"]]} for r in rows]
        if any(None in r["labels"] for r in out):  # a type outside the corpus' task: a registry error
            raise ValueError(f"{name}: rows carry labels outside its types {scheme.tasks[name]}")
        return out

    train = [r for part in parts["train"] for r in as_dataset_task(*part)]
    dev = [r for part in parts["validation"] for r in as_dataset_task(*part)]
    return Data(
        scheme,
        train,
        scheme.labels,
        dev,
        scheme.labels,
        list(tasks),
        f"mtl: {', '.join(tasks)} (one output layer each)",
    )


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
    return Data(
        AIOScheme(tasks),
        train,
        names,
        new.dev,
        new.dev_labels,
        [corpus],
        f"merged: {corpus} + AIO ({base.description})",
    )


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
    return Data(
        AIOScheme(tasks),
        train,
        names,
        tgt.dev,
        tgt.dev_labels,
        [target],
        f"gerbera stage 1: {target} + {', '.join(general)}",
    )


def _train_dev(corpus: str) -> list[str]:
    c = get_corpus(corpus)
    if c.dev_from_train:
        return ["train", "dev"]
    dev = [s for s in c.splits if SPLIT_NAMES.get(s) == "validation"]
    return ["train", *dev] if "train" in c.splits else dev
