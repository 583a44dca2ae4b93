"""The corpora as in-memory Hugging Face datasets: one corpus, or the merged AIO training set.

What the training recipes (``aioner/recipes.py``) read, and what ``dataset_scripts.build``
writes out as Parquet. Each row is one sentence under the AIO scheme (``dataset_scripts.aio``).
Files come from ``dataset_scripts.corpora.fetch``; a split whose file cannot be had is skipped
with a message on stderr (offline: at once), or raises when ``corpus_dataset`` was asked for it.
"""

from __future__ import annotations

import sys

from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from tqdm.auto import tqdm

from aioner_scheme import AIOScheme

from .aio import SplitReport, convert_split, document_ids_of_tests, scheme_for
from .corpora import AIO_TRAINING_CORPORA, CorpusUnavailableError, get_corpus

# Hub split names: the corpora's "dev"/"devel" become "validation".
SPLIT_NAMES = {"train": "train", "dev": "validation", "devel": "validation", "test": "test"}


def features(scheme: AIOScheme) -> Features:
    return Features(
        {
            "id": Value("string"),
            "document_id": Value("string"),
            "corpus": Value("string"),
            "task": Value("string"),
            "text": Value("string"),
            "offset": Value("int32"),
            "tokens": List(Value("string")),
            "token_spans": List(List(Value("int32"), length=2)),
            "labels": List(ClassLabel(names=scheme.labels)),
        }
    )


def corpus_splits(name: str) -> list[str]:
    corpus = get_corpus(name)
    splits = list(corpus.splits)
    if corpus.dev_from_train and "train" in splits:
        splits.insert(splits.index("train") + 1, "dev")
    return splits


def corpus_dataset(
    name: str, exclude_ids: set[str] = frozenset(), splits=None, sample=None, seed: int = 0
) -> tuple[DatasetDict, list[SplitReport]]:
    """A corpus as a DatasetDict (train/validation/test as available) and the split reports.

    Splits whose files cannot be had (not local, not downloadable) are skipped with a
    message; asking for one explicitly raises.
    """
    corpus = get_corpus(name)
    scheme = scheme_for(corpus)
    out, reports = {}, []
    for split in splits or corpus_splits(name):
        try:
            rows, report = convert_split(
                corpus,
                split,
                scheme=scheme,
                exclude_ids=exclude_ids if split != "test" else frozenset(),
                sample=sample if split == "train" else None,
                seed=seed,
            )
        except CorpusUnavailableError as err:
            if splits:
                raise
            print(f"[build] {name}/{split} skipped: {err}", file=sys.stderr)
            continue
        out[SPLIT_NAMES[split]] = Dataset.from_list(rows, features=features(scheme))
        reports.append(report)
    return DatasetDict(out), reports


def merged_dataset(
    corpora=None, *, sample=None, seed: int = 0, exclude_tests_of=None
) -> tuple[DatasetDict, list[SplitReport]]:
    """The merged AIO training set: every corpus' train (and dev) split under the AIO scheme.

    ``sample``: one fraction/count for every corpus, or a dict corpus -> fraction/count.
    ``exclude_tests_of``: corpora whose test documents are removed from training
    (default: BioRED, the test set the merged model is evaluated on; AIONER removed
    the 72 such documents). Pass every corpus to evaluate on all their test sets.
    """
    corpora = list(corpora or AIO_TRAINING_CORPORA)
    scheme = AIOScheme()
    for name in corpora:
        if scheme_for(get_corpus(name)).labels != scheme.labels:
            raise ValueError(f"corpus {name} is not an AIO corpus; merge it with the 'merged' training recipe")
    exclude = document_ids_of_tests(exclude_tests_of if exclude_tests_of is not None else ["BioRED"])
    parts: dict[str, list[dict]] = {"train": [], "validation": []}
    reports = []
    for name in tqdm(corpora, desc="merging corpora", disable=None):
        share = sample.get(name) if isinstance(sample, dict) else sample
        for split in ("train", "dev"):
            try:
                rows, report = convert_split(
                    name,
                    split,
                    scheme=scheme,
                    exclude_ids=exclude,
                    sample=share if split == "train" else None,
                    seed=seed,
                )
            except CorpusUnavailableError as err:
                print(f"[build] {name}/{split} not merged: {err}", file=sys.stderr)
                continue
            parts[SPLIT_NAMES[split]].extend(rows)
            reports.append(report)
    return DatasetDict({k: Dataset.from_list(v, features=features(scheme)) for k, v in parts.items()}), reports
