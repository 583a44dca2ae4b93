"""The all-in-one (AIO) scheme: the one place that knows tasks, task tags and labels.

AIONER (Luo et al., 2023, section 2.2) wraps every sentence of task T in a pair of
task tags, ``<T> ... </T>``, and labels its words with ``B-Type``/``I-Type`` for the
entity types task T annotates and ``O-T`` for everything else. A corpus that
annotates every type (BioRED) is the ``ALL`` task; a single-type corpus
(NCBI-disease) is the task named after its type. Because the "outside" label
depends on the task, a gene corpus' silence about diseases never teaches the
model that diseases are background.

This file travels inside every checkpoint (it is imported by ``modeling_aioner.py``
and ``pipeline_aioner.py``), so it imports nothing but the standard library.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# The six BioRED entity types, in the order of the original 19-label vocabulary.
DEFAULT_ENTITY_TYPES = ("Gene", "Disease", "Chemical", "Species", "Variant", "CellLine")
ALL_TASK = "ALL"
# Sub-words of the paper's maximum input length (special tokens and task tags included).
DEFAULT_MAX_LENGTH = 256


class UnknownTaskError(ValueError):
    """A task name the scheme (and so the checkpoint) does not know."""


class UntrainedTaskError(UnknownTaskError):
    """A task the checkpoint has a tag for but no training sentence: its output would be noise."""


def training_record(rows: Sequence[dict], label_names: Sequence[str]) -> dict[str, dict]:
    """Per task of the training rows actually used: sentences, and mentions per entity type.

    ``rows``: dicts with ``task`` and ``labels`` (ids into ``label_names``); a mention is a ``B-`` label.
    """
    record: dict[str, dict] = {}
    begins = {i: n[2:] for i, n in enumerate(label_names) if n.startswith("B-")}
    for row in rows:
        entry = record.setdefault(row["task"], {"sentences": 0, "mentions": {}})
        entry["sentences"] += 1
        for label in row["labels"]:
            if label in begins:
                entry["mentions"][begins[label]] = entry["mentions"].get(begins[label], 0) + 1
    return record


def is_trained(task: str, trained_tasks: dict | None) -> bool:
    """True if training saw sentences of ``task``; ``trained_tasks`` None (an older checkpoint): no record, True."""
    return trained_tasks is None or bool((trained_tasks.get(task) or {}).get("sentences"))


def check_trained(task: str, trained_tasks: dict | None) -> str:
    """Refuse a task without training sentences (see ``is_trained``)."""
    if not is_trained(task, trained_tasks):
        trained = sorted(t for t, e in trained_tasks.items() if e.get("sentences"))
        raise UntrainedTaskError(
            f"task {task!r} had no training data in this checkpoint, so its output would be noise: "
            f"it was trained on the tasks {trained}"
        )
    return task


def default_tasks(entity_types: Sequence[str] = DEFAULT_ENTITY_TYPES) -> dict[str, list[str]]:
    """One single-type task per entity type plus ``ALL`` covering every type."""
    tasks = {t: [t] for t in entity_types}
    tasks[ALL_TASK] = list(entity_types)
    return tasks


def task_tags(task: str) -> tuple[str, str]:
    return f"<{task}>", f"</{task}>"


def outside_label(task: str) -> str:
    return f"O-{task}"


@dataclass(frozen=True)
class Span:
    """A run of words ``[start, end)`` labelled with an entity type."""

    start: int
    end: int
    type: str


class AIOScheme:
    """Tasks (task name -> entity types it annotates) and the label set they imply.

    Labels are built task by task: the ``B-``/``I-`` labels of a task's types not
    seen before, then ``O-task``. For the default tasks this gives the paper's 19
    labels ``B-Gene, I-Gene, O-Gene, ..., B-CellLine, I-CellLine, O-CellLine, O-ALL``.
    """

    def __init__(self, tasks: Mapping[str, Sequence[str]] | Sequence[tuple[str, Sequence[str]]] | None = None):
        tasks = default_tasks() if tasks is None else tasks
        # A list of (task, types) pairs keeps its order through JSON (which sorts dict keys).
        tasks = dict(tasks.items() if isinstance(tasks, Mapping) else tasks)
        if not tasks:
            raise ValueError("an AIO scheme needs at least one task")
        self.tasks: dict[str, list[str]] = {}
        for task, types in tasks.items():
            if not task or any(c in task for c in "<>/ \t\n"):
                raise ValueError(f"task name {task!r} cannot be used inside a tag like <{task}>")
            if not types:
                raise ValueError(f"task {task!r} annotates no entity type")
            self.tasks[str(task)] = [str(t) for t in types]
        labels: list[str] = []
        for task, types in self.tasks.items():
            for t in types:
                for prefix in ("B-", "I-"):
                    if prefix + t not in labels:
                        labels.append(prefix + t)
            labels.append(outside_label(task))
        self.labels = labels
        self.label2id = {label: i for i, label in enumerate(labels)}
        self._task_ids = {task: i for i, task in enumerate(self.tasks)}

    # ----- construction from / to a checkpoint's config -----
    @classmethod
    def for_entity_types(cls, entity_types: Sequence[str] = DEFAULT_ENTITY_TYPES) -> AIOScheme:
        return cls(default_tasks(entity_types))

    def to_dict(self) -> dict[str, list[str]]:
        return {task: list(types) for task, types in self.tasks.items()}

    def to_pairs(self) -> list[list]:
        """``[[task, [types...]], ...]``: the order-preserving form saved in configs."""
        return [[task, list(types)] for task, types in self.tasks.items()]

    def check_labels(self, labels: Sequence[str]) -> None:
        """Raise if a label list (e.g. a config's id2label) is not this scheme's."""
        if list(labels) != self.labels:
            raise ValueError(
                f"label list {list(labels)} does not match the AIO scheme of tasks "
                f"{self.to_dict()}, which implies {self.labels}"
            )

    # ----- tasks -----
    @property
    def entity_types(self) -> list[str]:
        seen: list[str] = []
        for types in self.tasks.values():
            seen.extend(t for t in types if t not in seen)
        return seen

    def check_task(self, task: str) -> str:
        if task not in self.tasks:
            raise UnknownTaskError(f"unknown task {task!r}: this model knows the tasks {sorted(self.tasks)}")
        return task

    def task_index(self, task: str) -> int:
        """The task's position in the scheme: which output layer of a per-task (MTL) model is its own."""
        return self._task_ids[self.check_task(task)]

    def tag_tokens(self) -> list[str]:
        """Every task tag, to be added to the tokenizer as special tokens."""
        return [tag for task in self.tasks for tag in task_tags(task)]

    def allowed_label_ids(self, task: str) -> list[int]:
        """Labels a task may output: its types' B-/I- labels and its own O label."""
        self.check_task(task)
        names = [p + t for t in self.tasks[task] for p in ("B-", "I-")] + [outside_label(task)]
        return [self.label2id[n] for n in names]

    # ----- spans <-> word labels -----
    def encode(self, n_words: int, spans: Iterable[Span], task: str) -> list[int]:
        """Word-level label ids for a sentence of ``task`` with entity ``spans``."""
        self.check_task(task)
        out = self.label2id[outside_label(task)]
        ids = [out] * n_words
        for span in spans:
            if span.type not in self.tasks[task]:
                raise ValueError(f"entity type {span.type!r} is not annotated by task {task!r}")
            if not 0 <= span.start < span.end <= n_words:
                raise ValueError(f"span {span} lies outside a sentence of {n_words} words")
            if any(ids[i] != out for i in range(span.start, span.end)):
                raise ValueError(f"span {span} overlaps another span of the same sentence")
            ids[span.start] = self.label2id["B-" + span.type]
            for i in range(span.start + 1, span.end):
                ids[i] = self.label2id["I-" + span.type]
        return ids

    def decode(self, label_ids: Sequence[int]) -> list[Span]:
        """Entity spans from word-level label ids."""
        return spans_from_labels([self.labels[i] for i in label_ids])


def spans_from_labels(labels: Sequence[str]) -> list[Span]:
    """Entity spans from word-level label names (``B-X``, ``I-X``, ``O-task``).

    An ``I-X`` that does not continue an ``X`` entity starts a new one (the lenient
    reading: a model's lone I- still marks an entity).
    """
    spans: list[Span] = []
    start, cur = None, None
    for i, label in enumerate(labels):
        prefix, _, etype = label.partition("-")
        if prefix == "I" and cur == etype:
            continue
        if cur is not None:
            spans.append(Span(start, i, cur))
            start, cur = None, None
        if prefix in ("B", "I"):
            start, cur = i, etype
    if cur is not None:
        spans.append(Span(start, len(labels), cur))
    return spans


# ----- model inputs: wrapping, windows and first sub-words -----
_PLAIN_BACKENDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _plain_backend(tokenizer):
    """A copy of a fast tokenizer's Rust tokenizer with padding and truncation off (None if slow).

    tokenizer.json files often switch both on (all-MiniLM-L6-v2 pads to 128), and the Rust
    tokenizer applies them even to single words; the copy leaves the caller's tokenizer as it is.
    """
    if not getattr(tokenizer, "is_fast", False):
        return None
    try:
        size, backend = _PLAIN_BACKENDS[tokenizer]
        if size == len(tokenizer):  # tokens added since (task tags) invalidate the copy
            return backend
    except (KeyError, TypeError):
        pass
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    try:
        _PLAIN_BACKENDS[tokenizer] = (len(tokenizer), backend)
    except TypeError:  # not weak-referenceable: no cache
        pass
    return backend


def word_pieces(tokenizer, words: Sequence[str], cache: dict | None = None) -> list[list[int]]:
    """Sub-word ids of each word, tokenized on its own (as BERT's pre-tokenizer would).

    A word the tokenizer turns into nothing (a lone zero-width or control character)
    becomes the unknown token, so that every word keeps a first sub-word and a label.
    """
    cache = {} if cache is None else cache
    todo = [w for w in dict.fromkeys(words) if w not in cache]
    if todo:
        # verbose=False: a word of more sub-words than the encoder's limit is not an error here (windows()
        # and build_input() cut it), so transformers' "will result in indexing errors" warning would mislead.
        backend = _plain_backend(tokenizer)
        if backend is not None:
            # The Rust tokenizer directly: transformers' per-encoding Python conversion costs ~45 us
            # a word, 7x the tokenization itself. Same ids (tests/test_scheme.py checks).
            encoded = [e.ids for e in backend.encode_batch(todo, add_special_tokens=False)]
        else:
            encoded = tokenizer(todo, add_special_tokens=False, verbose=False)["input_ids"]
        for w, ids in zip(todo, encoded):
            cache[w] = ids if ids else [tokenizer.unk_token_id]
    return [cache[w] for w in words]


def windows(piece_counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Split a sentence's words into consecutive runs of at most ``budget`` sub-words.

    No word is dropped: a single word longer than the budget gets a window of its
    own (its sub-words are cut to the budget by ``build_input``, but the word keeps
    its first sub-word and so its label).
    """
    if budget < 1:
        raise ValueError("the sub-word budget per window must be at least 1")
    out: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, n in enumerate(piece_counts):
        n = min(n, budget)
        if used + n > budget and i > start:
            out.append((start, i))
            start, used = i, 0
        used += n
    if start < len(piece_counts):
        out.append((start, len(piece_counts)))
    return out


# What a window holds besides the words it labels (``AIONERConfig.context``):
# "sentence": one sentence (or a run of its words), as in the paper;
# "pack": consecutive whole sentences of a document, all labelled, up to the budget;
# "margin": one sentence's window plus up to ``context_margin`` sub-words of the words on each side
#   (neighbouring sentences, or the rest of a long sentence), read but not labelled (FLERT).
CONTEXTS = ("sentence", "pack", "margin")


def labelled_budget(budget: int, context: str = "sentence", margin: int = 0) -> int:
    """Sub-words a window gives to the words it labels: all of ``budget`` but the two margins.

    Pass it as ``build_input``'s ``budget`` (the cut of a single over-long word)."""
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, not {context!r}")
    inner = budget - 2 * margin if context == "margin" else budget
    if inner < 1:
        raise ValueError(f"a context margin of {margin} sub-words leaves no room in a window of {budget}")
    return inner


def document_windows(
    sentence_counts: Sequence[Sequence[int]], budget: int, context: str = "sentence", margin: int = 0
) -> list[tuple[int, int, int, int]]:
    """Windows over the words of a document, given each sentence's sub-word count per word.

    Returns ``(left, start, end, right)`` word indices into the document's words (its sentences
    concatenated): words ``[start, end)`` are labelled, ``[left, start)`` and ``[end, right)`` are
    context. Every word is labelled in exactly one window and none is dropped; the labelled
    sub-words plus the context ones never exceed ``budget``.
    """
    inner = labelled_budget(budget, context, margin)
    counts = [min(n, inner) for sent in sentence_counts for n in sent]
    out: list[tuple[int, int, int, int]] = []
    first, group, used = 0, None, 0  # group: start of the current packed run of sentences
    for sent in sentence_counts:
        n_words, cost = len(sent), sum(min(n, inner) for n in sent)
        if context == "pack" and cost <= inner:
            if group is not None and used + cost > inner:
                out.append((group, group, first, first))
                group = None
            if group is None:
                group, used = first, 0
            used += cost
        else:
            if group is not None:
                out.append((group, group, first, first))
                group = None
            for a, b in windows(sent, inner):
                out.append((first + a, first + a, first + b, first + b))
        first += n_words
    if group is not None:
        out.append((group, group, first, first))
    if context == "margin":
        out = [_with_margins(counts, start, end, margin) for _, start, end, _ in out]
    return out


def _with_margins(counts: Sequence[int], start: int, end: int, margin: int) -> tuple[int, int, int, int]:
    """Whole words on each side of ``[start, end)``, up to ``margin`` sub-words per side."""
    left, used = start, 0
    while left > 0 and used + counts[left - 1] <= margin:
        left -= 1
        used += counts[left]
    right, used = end, 0
    while right < len(counts) and used + counts[right] <= margin:
        used += counts[right]
        right += 1
    return left, start, end, right


def special_ids(tokenizer) -> tuple[list[int], list[int]]:
    """Ids the encoder expects before and after a sequence ([CLS] / [SEP], or <s> / </s>)."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return ([] if first is None else [first]), ([] if last is None else [last])


def task_frame(tokenizer, task: str, tags: bool = True) -> tuple[list[int], list[int]]:
    """The ids before the words (``[CLS] <task>``) and after them (``</task> [SEP]``).

    ``tags=False``: ``[CLS]`` and ``[SEP]`` only, for models that tell tasks apart by output
    layer instead of by tag (the multi-task baseline, ``AIONERConfig(task_tags=False)``).
    """
    before, after = special_ids(tokenizer)
    if not tags:
        return list(before), list(after)
    open_tag, close_tag = (tokenizer.convert_tokens_to_ids(t) for t in task_tags(task))
    if open_tag == tokenizer.unk_token_id or close_tag == tokenizer.unk_token_id:
        raise UnknownTaskError(f"the tokenizer has no task tags for task {task!r}")
    return list(before) + [open_tag], [close_tag] + list(after)


def build_input(
    tokenizer,
    pieces: Sequence[Sequence[int]],
    task: str,
    budget: int,
    frame: tuple[list[int], list[int]] | None = None,
    tags: bool = True,
    left: Sequence[Sequence[int]] = (),
    right: Sequence[Sequence[int]] = (),
) -> tuple[list[int], list[int]]:
    """``[CLS] <task> w1 w2 ... </task> [SEP]`` and the position of each word's first sub-word.

    ``frame``: ``task_frame(tokenizer, task)``, for callers that build many windows of one task.
    ``left``/``right``: context words (``document_windows``), placed outside the task tags, so that
    the tags still enclose exactly the words to label: ``[CLS] l1 l2 <task> w1 ... </task> r1 [SEP]``.
    """
    head, tail = frame or task_frame(tokenizer, task, tags)
    n_open = 1 if tags else 0  # the open tag ends ``head``, the close tag starts ``tail``
    ids = list(head[: len(head) - n_open])
    for p in left:
        ids.extend(p[:budget])
    ids += head[len(head) - n_open :]
    firsts = []
    for p in pieces:
        firsts.append(len(ids))
        ids.extend(p[:budget])
    ids += tail[:n_open]
    for p in right:
        ids.extend(p[:budget])
    ids += tail[n_open:]
    return ids, firsts


def reserved_length(tokenizer, tags: bool = True) -> int:
    """Positions a window spends on special tokens and the two task tags (if the model uses tags)."""
    before, after = special_ids(tokenizer)
    return len(before) + len(after) + (2 if tags else 0)


def window_budget(tokenizer, window_length: int, encoder_config=None, tags: bool = True) -> int:
    """Sub-words of words a window holds: the smallest of ``window_length``, the encoder's position
    embeddings and the tokenizer's ``model_max_length``, less the reserved positions.

    The one rule for training (``aioner.features``) and tagging (``pipeline_aioner``), so both cut
    a sentence into the same windows. A ``model_max_length`` of 10**30 or so means "not set".
    """
    limits = [window_length]
    max_pos = getattr(encoder_config, "max_position_embeddings", None)
    if max_pos:
        limits.append(max_pos)
    if 0 < (getattr(tokenizer, "model_max_length", 0) or 0) < 10**6:
        limits.append(tokenizer.model_max_length)
    return min(limits) - reserved_length(tokenizer, tags)
