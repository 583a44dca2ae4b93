"""Dataset rows (words + AIO labels) -> model inputs, and batches of them.

A row is one sentence of one task. Its words become sub-words, wrapped in the
task's tags by the AIO scheme; a sentence longer than the window is split into
windows of whole words (never truncated). Only a word's first sub-word carries a
label; every other position is ``-100`` and takes no part in the loss or the CRF.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from aioner_scheme import AIOScheme, build_input, document_windows, labelled_budget, word_pieces


@dataclass
class Feature:
    input_ids: list[int]
    labels: list[int]  # -100 except at first sub-words
    row: int  # index of the source row
    word_offset: int  # index of the window's first word within its row
    task: str
    task_id: int = 0  # the task's index in the scheme: picks the output layer of a per-task model


def encode_rows(
    rows: Iterable[dict],
    label_names: Sequence[str],
    tokenizer,
    scheme: AIOScheme,
    budget: int,
    tags: bool = True,
    context: str = "sentence",
    margin: int = 0,
) -> list[Feature]:
    """Features of every row; ``label_names`` decodes the rows' label ids (their dataset's ClassLabel).

    ``tags=False``: no task tags around the words (a model with one output layer per task).
    ``context`` / ``margin`` (``aioner_scheme.document_windows``): with "pack" or "margin", the
    consecutive rows of one document (``document_id``) and task are read together, as the tagger
    reads a document's sentences; a window's ``row`` is then the document's first row and its
    ``word_offset`` counts the document's words."""
    to_scheme = {}
    for name in label_names:
        if name not in scheme.label2id:
            raise ValueError(f"dataset label {name!r} is not in the model's label set {scheme.labels}")
        to_scheme[name] = scheme.label2id[name]
    inner = labelled_budget(budget, context, margin)
    cache: dict[str, list[int]] = {}
    out = []
    for first, group in _documents(rows, context):
        task = group[0]["task"]
        scheme.check_task(task)
        sentences = [word_pieces(tokenizer, row["tokens"], cache) for row in group]
        pieces = [p for sentence in sentences for p in sentence]
        labels = [to_scheme[label_names[i]] for row in group for i in row["labels"]]
        counts = [[len(p) for p in sentence] for sentence in sentences]
        for left, a, b, right in document_windows(counts, budget, context, margin):
            ids, firsts = build_input(
                tokenizer, pieces[a:b], task, inner, tags=tags, left=pieces[left:a], right=pieces[b:right]
            )
            lab = [-100] * len(ids)
            for pos, label in zip(firsts, labels[a:b]):
                lab[pos] = label
            out.append(Feature(ids, lab, first, a, task, scheme.task_index(task)))
    return out


def _documents(rows: Iterable[dict], context: str):
    """(index of the first row, rows) of each run of consecutive rows of one document and task;
    every row alone for sentence windows (or rows without a ``document_id``)."""
    group: list[dict] = []
    first = 0
    for r, row in enumerate(rows):
        key = row.get("document_id") if context != "sentence" else None
        if group and (key is None or key != group[0].get("document_id") or row["task"] != group[0]["task"]):
            yield first, group
            group = []
        if not group:
            first = r
        group.append(row)
    if group:
        yield first, group


def collate(features: Sequence[Feature], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f.input_ids) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    labels = torch.full((len(features), width), -100, dtype=torch.long)
    attention = torch.zeros((len(features), width), dtype=torch.long)
    for i, f in enumerate(features):
        n = len(f.input_ids)
        ids[i, :n] = torch.tensor(f.input_ids)
        labels[i, :n] = torch.tensor(f.labels)
        attention[i, :n] = 1
    task_ids = torch.tensor([f.task_id for f in features], dtype=torch.long)
    return {"input_ids": ids, "attention_mask": attention, "labels": labels, "task_ids": task_ids}


class LengthGroupedBatches:
    """Shuffled batches of similar lengths: less padding, so more useful tokens per second.

    Each epoch shuffles with ``seed + epoch`` (so a resumed run replays the same
    order), cuts the order into pools of ``pool`` batches, sorts each pool by
    length and shuffles the resulting batches.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, pool: int = 50):
        self.lengths, self.batch_size, self.seed, self.pool = list(lengths), batch_size, seed, pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), size):
            chunk = sorted(order[start : start + size], key=lambda i: self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        return iter(batches)

    def __len__(self):
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size
