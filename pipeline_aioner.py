"""The ``token-classification`` pipeline that travels with every AIONER checkpoint.

``pipeline("token-classification", model=checkpoint, trust_remote_code=True)``
returns this pipeline. For a string (or a list of strings) it returns entities
with ``text``, ``type``, ``start``, ``end`` (character offsets into the input
string, so ``text == input[start:end]``) and ``score``; ``entity_group`` and
``word`` repeat type and text for code written against the stock aggregated
output. ``task=`` picks ``ALL`` or a single type.

Text is split into sentences and words (``aioner_text``), each sentence is
wrapped in its task tags (``aioner_scheme``), and a sentence longer than the
encoder's window is split into windows of whole words: no word is ever dropped.
Windows of many texts are batched together, sorted by length, so padding costs
little. ``AIONERTagger`` is that engine; the tagging CLI uses it too.
"""

from __future__ import annotations

import gc
import warnings
from bisect import bisect_left
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate

import torch
from transformers import Pipeline

try:  # inside a checkpoint folder these are sibling modules
    from .aioner_scheme import (
        AIOScheme,
        build_input,
        check_trained,
        document_windows,
        labelled_budget,
        task_frame,
        window_budget,
        word_pieces,
    )
    from .aioner_text import segment
    from .modeling_aioner import pack
except ImportError:  # from a source checkout or an installed package
    from aioner_scheme import (
        AIOScheme,
        build_input,
        check_trained,
        document_windows,
        labelled_budget,
        task_frame,
        window_budget,
        word_pieces,
    )
    from aioner_text import segment
    from modeling_aioner import pack

# Padded sub-words per forward batch: large enough to keep the matmuls efficient, small enough
# that the activations stay in cache. Measured on a 2-core CPU (MiniLM, BioRED test): 2,048
# tags 12.3 docs/s, 8,192 9.2 docs/s. GPUs want bigger batches to fill the device.
CPU_TOKENS_PER_BATCH = 2048
GPU_TOKENS_PER_BATCH = 16384
DEFAULT_TOKENS_PER_BATCH = None  # by device, at the first batch


@dataclass
class Window:
    """One model input: a run of whole words of one text to label (of one sentence, unless packed)."""

    text_index: int
    input_ids: list[int]
    firsts: list[int]  # position of each word's first sub-word in input_ids
    words: list[tuple[int, int]]  # character span of each word in its text


@dataclass
class WordGroup:
    """Sentences of one text that windows are cut from together (one sentence, or the whole text)."""

    text_index: int
    text: str
    sentences: list[list[tuple[int, int]]]  # each sentence's word spans
    keep: list[bool]  # whether each sentence is wanted (``only=``)
    words: list[tuple[int, int]] = field(init=False)  # the sentences' word spans, in order

    def __post_init__(self):
        self.words = [span for sentence in self.sentences for span in sentence]


# Edges a mention cannot have: it never ends on a bare opening bracket or separator, nor starts on a
# bare closing bracket or separator. A span the CRF ends or starts there was cut inside a term:
# "stem cell factor (" of "stem cell factor (SCF)", "TNF-alpha -" before "-857C/T". "-" and "+"
# may start a mention ("-455G>A") unless glued to the word before: "-801" of "MK-801" and ">A" of
# "20210G>A" are the ends of one word that segment cut at its punctuation, so the span takes the
# whole of it. A period may end one only as an abbreviation's, glued to its word ("sp. nov.").
_NOT_LAST = frozenset("([{/,-:;")
_NOT_FIRST = frozenset(")]}/,.:;>")
_CLOSING = {")": "(", "]": "[", "}": "{"}
_OPENING = {"(": ")", "[": "]", "{": "}"}


def tidy_span(text: str, words: Sequence[tuple[int, int]], first: int, end: int, taken: set[int]) -> tuple[int, int]:
    """The words ``[first, end)`` of a predicted span with its edges mended (see ``_NOT_LAST``):
    a start glued inside a word is moved to that word's start, over words no other span holds
    (``taken``); bare separators and unmatched brackets at either edge are dropped."""

    def bare(i: int) -> str:
        s, e = words[i]
        return text[s] if e - s == 1 and not text[s].isalnum() else ""

    def glued(i: int) -> bool:  # word i starts where word i - 1 ends
        return i > 0 and words[i - 1][1] == words[i][0] and i - 1 not in taken

    if bare(first) and bare(first) not in _OPENING and glued(first):
        while glued(first):
            first -= 1
    changed = True
    while changed and end - first > 1:
        changed = False
        span = text[words[first][0] : words[end - 1][1]]
        last, lead = bare(end - 1), bare(first)
        if (
            last in _NOT_LAST
            or (last == "." and words[end - 2][1] != words[end - 1][0])
            or (last in _CLOSING and span.count(last) > span.count(_CLOSING[last]))
        ):
            end, changed = end - 1, True
        elif lead in _NOT_FIRST or (lead in _OPENING and span.count(lead) > span.count(_OPENING[lead])):
            first, changed = first + 1, True
    return first, end


# What one more forward batch costs beyond its tokens (Python, kernel launches, small-matmul
# inefficiency), in padded-token equivalents: measured on a 2-core CPU (MiniLM), a batch of one
# 40-sub-word window takes as long as ~60 sub-words in a large batch.
BATCH_COST_TOKENS = 64


def length_batches(items, tokens_per_batch: int, batch_cost: int = BATCH_COST_TOKENS) -> list[list]:
    """Length-sorted batches (of anything with ``input_ids``) whose padded size stays within the budget.

    Windows are grouped by length, and a dynamic programme over the sorted lengths picks which
    neighbouring lengths share batches, minimizing padded sub-words plus ``batch_cost`` per batch.
    Greedy filling of a sorted list wasted 4.9% on padding (BioRED test); this wastes 1.9%.
    """
    items = sorted(items, key=lambda w: len(w.input_ids))
    if not items:
        return []
    lengths, counts = [], []
    for item in items:
        n = len(item.input_ids)
        if lengths and lengths[-1] == n:
            counts[-1] += 1
        else:
            lengths.append(n)
            counts.append(1)
    prefix = [0]
    for c in counts:
        prefix.append(prefix[-1] + c)
    # best[j]: least cost of batching groups 0..j-1; start[j]: first group of the last segment.
    best, start = [0.0] + [float("inf")] * len(lengths), [0] * (len(lengths) + 1)
    for j in range(1, len(lengths) + 1):
        width = lengths[j - 1]
        per_batch = max(1, tokens_per_batch // width)
        for i in range(j - 1, -1, -1):
            if lengths[i] * 2 < width and i < j - 1:  # far shorter windows never pay to pad this much
                break
            n = prefix[j] - prefix[i]
            cost = best[i] + n * width + -(-n // per_batch) * batch_cost
            if cost < best[j]:
                best[j], start[j] = cost, i
    segments, j = [], len(lengths)
    while j > 0:
        segments.append((start[j], j))
        j = start[j]
    out = []
    for i, j in reversed(segments):
        members = items[prefix[i] : prefix[j]]
        per_batch = max(1, tokens_per_batch // lengths[j - 1])
        k = -(-len(members) // per_batch)
        size = -(-len(members) // k)  # k batches of nearly equal size, none over the budget
        out.extend(members[b : b + size] for b in range(0, len(members), size))
    return out


def overlap_test(spans: Sequence[tuple[int, int]]):
    """A function telling whether [start, end) overlaps any of ``spans``, in O(log n) a call (a
    full-text article can hold thousands of spans and hundreds of sentences)."""
    spans = sorted(spans)
    starts = [a for a, _ in spans]
    reach = list(accumulate((b for _, b in spans), max))  # the furthest end among the first k spans

    def overlaps(start: int, end: int) -> bool:
        k = bisect_left(starts, end)  # spans starting before ``end``
        return k > 0 and reach[k - 1] > start

    return overlaps


_FLUSHING = 0  # depth of nested denormals_flushed() blocks


@contextmanager
def denormals_flushed():
    """Denormal floats flushed to zero inside the block, for the calling thread; off again after.

    Tiny CRF scores and probabilities can be denormal, which x86 CPUs process up to ~100x slower
    (seen: Viterbi 5.7 s -> 0.05 s). Flushing them changes no decision. Set per call, not for the
    process, so that the rest of a user's program computes as it would without the tagger (torch
    has no getter for the flag: the process default, off, is restored when the outermost block ends).
    """
    global _FLUSHING
    _FLUSHING += 1
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        _FLUSHING -= 1
        if _FLUSHING == 0:
            torch.set_flush_denormal(False)


@contextmanager
def gc_paused():
    """No cyclic garbage collection inside the block.

    Tagging allocates tens of thousands of small lists and tuples per 100 abstracts (none in
    cycles: reference counting frees them all), which triggers full collections that walk every
    object of the process (torch, transformers, spaCy: millions). Measured on BioRED test: window
    building 0.50 s with the collector on, 0.16 s paused. Collection resumes after the block.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): read from /proc/cpuinfo (Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def native_bf16(device: torch.device | str | None = None) -> bool:
    """Whether ``device`` (default: where train.py trains, the GPU when there is one) computes bf16 natively.

    The one place that decides it for training and tagging: on a GPU, its own bf16 support; on a CPU, its
    flags (emulated bf16 trained at 58 tokens/s against fp32's 914 on an AVX2-only EPYC).
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)  # pre-Ampere GPUs only emulate it
    return device.type == "cpu" and native_bf16_cpu()


def default_autocast_dtype(device: torch.device) -> torch.dtype | None:
    """What ``"auto"`` means: bf16 on CPUs with native bf16, where it tags 1.4-1.7x faster; else fp32 (None).

    It is not the default. Measured on the quick-start model (results/task_quality_quickstart_cpu.json),
    bf16 moved strict F1 by -0.62 on Linnaeus test and by -0.06 to +0.14 elsewhere: more than the 0.1
    the project allows a default to cost, so fp32 stays the default and bf16 is a choice.
    """
    return torch.bfloat16 if device.type == "cpu" and native_bf16(device) else None


# What a precision name asks AIONERTagger for (its autocast_dtype); the one table the pipeline and CLI use.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "auto": "auto"}


class AIONERTagger:
    """Batched tagging of many texts with one model: the engine behind pipeline and CLI.

    ``autocast_dtype``: ``None`` for fp32 (default), ``torch.bfloat16``/``torch.float16``, or ``"auto"``
    (bf16 on CPUs with native bf16, else fp32: see ``default_autocast_dtype``).
    """

    def __init__(
        self,
        model,
        tokenizer,
        tokens_per_batch: int | None = DEFAULT_TOKENS_PER_BATCH,
        autocast_dtype: torch.dtype | str | None = None,
        compile: bool = False,
        tidy_edges: bool = True,
    ):
        self.model = model
        self.tidy_edges = tidy_edges  # tidy_span on every entity
        # torch.compile (inductor) fuses the encoder's layer norms, GELUs and bias adds: worth its
        # one-off compilation (20-60 s on a 2-core CPU) on large jobs only. One graph with dynamic
        # shapes serves every batch width.
        self.compile = compile
        self._compiled = None
        self.tokenizer = tokenizer
        self.scheme = AIOScheme(model.config.tasks)
        # The MTL baseline (one output layer per task) reads untagged windows and needs the task's index.
        self.task_tags = getattr(model.config, "task_tags", True)
        self.per_task = getattr(model.config, "output_layers", "shared") == "per_task"
        # What training saw per task; a task without sentences is refused (its output would be noise).
        self.trained_tasks = getattr(model.config, "trained_tasks", None)
        if self.trained_tasks is None:
            warnings.warn(
                "this checkpoint does not record which tasks it was trained on (saved before the "
                "record existed): every task tag is accepted, and one never trained gives noise",
                stacklevel=2,
            )
        if tokens_per_batch is None:
            on_gpu = next(model.parameters()).device.type != "cpu"
            tokens_per_batch = GPU_TOKENS_PER_BATCH if on_gpu else CPU_TOKENS_PER_BATCH
        self.tokens_per_batch = tokens_per_batch
        if autocast_dtype == "auto":
            autocast_dtype = default_autocast_dtype(next(model.parameters()).device)
        self.autocast_dtype = autocast_dtype
        self.budget = window_budget(tokenizer, model.config.window_length, model.encoder.config, self.task_tags)
        # What else a window holds (checkpoints saved before the option: one sentence, as then).
        self.context = getattr(model.config, "context", "sentence")
        self.context_margin = getattr(model.config, "context_margin", 0)
        self._piece_cache: dict[str, list[int]] = {}
        self._frames: dict[str, tuple[list[int], list[int]]] = {}  # task -> its tags and special tokens

    # ----- text -> windows -----
    def windows(
        self, text: str, task: str, text_index: int = 0, passages: Sequence[tuple[int, int]] | None = None
    ) -> list[Window]:
        """Windows of ``text``; ``passages`` (start, end) are segmented separately (title, abstract)."""
        return self.windows_of([text], task, [passages], first_index=text_index)

    def windows_of(
        self,
        texts: Sequence[str],
        task: str,
        passages: Sequence[Sequence[tuple[int, int]] | None] | None = None,
        first_index: int = 0,
        only: Sequence[Sequence[tuple[int, int]]] | None = None,
    ) -> list[Window]:
        """Windows of many texts, their new words sent to the tokenizer in one call; with ``only``
        (character spans per text), just the windows of the sentences that overlap one of that text's spans.

        A text's sentences are read as training read a document's (``config.context``): each alone,
        packed, or with margins of their neighbours' words (``aioner_scheme.document_windows``)."""
        check_trained(self.scheme.check_task(task), self.trained_tasks)
        groups = self.word_groups(texts, passages, first_index, only)
        pieces = self.pieces_of(groups)
        counts = [[len(x) for x in p] for p in pieces]
        return [self.window(groups[g], pieces[g], cut, task) for g, cut in self.plan(groups, counts, self.budget)]

    def word_groups(
        self,
        texts: Sequence[str],
        passages: Sequence[Sequence[tuple[int, int]] | None] | None = None,
        first_index: int = 0,
        only: Sequence[Sequence[tuple[int, int]]] | None = None,
    ) -> list[WordGroup]:
        """The runs of sentences that windows are cut from: each sentence alone (``context="sentence"``),
        or a text's sentences together (packing and margins read across sentences)."""
        groups = []
        for i, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates ("\ud800" JSON escapes) cannot be tokenized:
                text = text.encode("utf-8", "replace").decode("utf-8")  # "?" each, so offsets stay the same
            wanted = overlap_test(only[i]) if only is not None else None
            sentences = [
                sentence
                for start, end in (passages[i] if passages else None) or [(0, len(text))]
                for sentence in segment(text[start:end], offset=start)
            ]
            keep = [wanted is None or wanted(sentence[0][0], sentence[-1][1]) for sentence in sentences]
            if self.context == "sentence":  # no context: each wanted sentence is read alone
                groups += [WordGroup(first_index + i, text, [s], [True]) for s, k in zip(sentences, keep) if k]
            elif any(keep):
                groups.append(WordGroup(first_index + i, text, sentences, keep))
        return groups

    def pieces_of(self, groups: Sequence[WordGroup]) -> list[list[list[int]]]:
        """Each group's words as this tokenizer's sub-word ids (new words sent to it in one call)."""
        if len(self._piece_cache) > 500_000:  # bounded memory over PubMed-scale runs
            self._piece_cache.clear()
        flat = word_pieces(self.tokenizer, [g.text[s:e] for g in groups for s, e in g.words], self._piece_cache)
        out, k = [], 0
        for g in groups:
            out.append(flat[k : k + len(g.words)])
            k += len(g.words)
        return out

    def plan(self, groups: Sequence[WordGroup], counts: Sequence[Sequence[int]], budget: int):
        """``(group index, (left, start, end, right))`` for every window worth building:
        ``aioner_scheme.document_windows`` over each group, given each word's sub-word count
        (an ensemble plans one set of windows from the largest count any member's tokenizer gives)."""
        for g, (group, c) in enumerate(zip(groups, counts)):
            per_sentence, sentence_of = [], []
            for n, sentence in enumerate(group.sentences):
                per_sentence.append(c[len(sentence_of) : len(sentence_of) + len(sentence)])
                sentence_of += [n] * len(sentence)
            for left, a, b, right in document_windows(per_sentence, budget, self.context, self.context_margin):
                if any(group.keep[sentence_of[a] : sentence_of[b - 1] + 1]):
                    yield g, (left, a, b, right)

    def window(
        self, group: WordGroup, pieces: Sequence[list[int]], cut: tuple[int, int, int, int], task: str, budget=None
    ) -> Window:
        """The model input of one planned window: words ``[start, end)`` of ``group`` labelled, the rest
        of ``cut = (left, start, end, right)`` as context. ``budget``: the sub-words it may hold (this
        tagger's, unless an ensemble plans for members with smaller ones)."""
        left, a, b, right = cut
        inner = labelled_budget(budget or self.budget, self.context, self.context_margin)
        if task not in self._frames:
            self._frames[task] = task_frame(self.tokenizer, task, self.task_tags)
        ids, firsts = build_input(
            self.tokenizer, pieces[a:b], task, inner, self._frames[task], left=pieces[left:a], right=pieces[b:right]
        )
        return Window(group.text_index, ids, firsts, group.words[a:b])

    def batches(self, wins: list[Window]) -> list[list[Window]]:
        return length_batches(wins, self.tokens_per_batch)

    def collate(self, batch: list[Window]) -> dict[str, torch.Tensor]:
        width = max(len(w.input_ids) for w in batch)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.tensor([w.input_ids + [pad] * (width - len(w.input_ids)) for w in batch], dtype=torch.long)
        lengths = torch.tensor([len(w.input_ids) for w in batch])
        attention = (torch.arange(width)[None, :] < lengths[:, None]).long()
        word_mask = torch.zeros((len(batch), width), dtype=torch.bool)
        rows = [i for i, w in enumerate(batch) for _ in w.firsts]
        word_mask[rows, [f for w in batch for f in w.firsts]] = True
        return {"input_ids": ids, "attention_mask": attention, "word_mask": word_mask}

    # ----- windows -> entities -----
    @torch.inference_mode()
    def label_windows(self, wins: list[Window], task: str):
        """(window, word label ids, word confidences) for every window, in batch order."""
        allowed = self.scheme.allowed_label_ids(task)
        # Only a per-task model takes these: checkpoints saved before it carry code without them.
        task_id = self.scheme.task_index(task) if self.per_task else None
        decode_kwargs = {"task": task} if self.per_task else {}
        for batch in self.batches(wins):
            logits, word_mask = self.word_emissions(batch, task_id)
            paths, scores = self.model.decode_emissions(logits, word_mask, allowed, with_scores=True, **decode_kwargs)
            yield from zip(batch, paths, scores)

    def word_emissions(self, batch: list[Window], task_id=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The label scores of each window's words, ``[B, W, num_labels]`` (float32), and their mask
        ``[B, W]``: the first sub-word's scores of each word, in order, whatever the tokenizer."""
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in self.collate(batch).items()}
        with torch.autocast(device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            logits = self.emissions(inputs["input_ids"], inputs["attention_mask"], task_id)
        return pack(logits.float(), inputs["word_mask"])

    def _eager_emissions(self, input_ids, attention_mask, task_id=None):
        if task_id is None:
            return self.model.emissions(input_ids, attention_mask)[0]
        return self.model.emissions(input_ids, attention_mask, task_ids=task_id)[0]

    def emissions(self, input_ids, attention_mask, task_id=None):
        if not self.compile:
            return self._eager_emissions(input_ids, attention_mask, task_id)
        if self._compiled is None:
            self._compiled = torch.compile(self._eager_emissions, dynamic=True)
        try:
            return self._compiled(input_ids, attention_mask, task_id)
        except Exception as err:  # no C++ compiler, an unsupported encoder...: tag on, uncompiled
            import warnings

            warnings.warn(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); tagging uncompiled")
            self.compile = False
            return self._eager_emissions(input_ids, attention_mask, task_id)

    def entities(self, text: str, window: Window, path: list[int], scores: list[float]) -> list[dict]:
        out = []
        spans = self.scheme.decode(path)
        taken = {i for span in spans for i in range(span.start, span.end)} if self.tidy_edges else set()
        for span in spans:
            first, last = span.start, span.end
            if self.tidy_edges:
                first, last = tidy_span(text, window.words, first, last, taken)
            start, end = window.words[first][0], window.words[last - 1][1]
            # The model's confidence in the words it tagged, whatever tidying added or dropped.
            score = sum(scores[span.start : span.end]) / (span.end - span.start)
            out.append(
                {
                    "entity_group": span.type,
                    "type": span.type,
                    "score": float(score),
                    "word": text[start:end],
                    "text": text[start:end],
                    "start": start,
                    "end": end,
                }
            )
        return out

    def collect(self, texts: Sequence[str], labelled, first_index: int = 0) -> list[list[dict]]:
        """Entities of each text from ``label_windows``' output, sorted by offset."""
        results: list[list[dict]] = [[] for _ in texts]
        for window, path, scores in labelled:
            i = window.text_index - first_index
            results[i].extend(self.entities(texts[i], window, path, scores))
        for r in results:
            r.sort(key=lambda e: (e["start"], e["end"]))
        return results

    def tag(
        self,
        texts: Sequence[str],
        task: str = "ALL",
        passages: Sequence[Sequence[tuple[int, int]] | None] | None = None,
        only: Sequence[Sequence[tuple[int, int]]] | None = None,
    ) -> list[list[dict]]:
        """Entities of each text, sorted by offset (with ``only``: of the sentences overlapping those spans).

        The same three steps as the pipeline's preprocess / _forward / postprocess, over many texts at once.
        """
        with gc_paused(), denormals_flushed():
            wins = self.windows_of(texts, task, passages, only=only)
            return self.collect(texts, self.label_windows(wins, task))


class AIONERTokenClassificationPipeline(Pipeline):
    """``pipeline("token-classification", model=..., trust_remote_code=True)`` for AIONER checkpoints."""

    def __init__(
        self,
        *args,
        tokens_per_batch: int | None = DEFAULT_TOKENS_PER_BATCH,
        compile: bool = False,
        precision: str = "fp32",
        tidy_edges: bool = True,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, not {precision!r}")
        dtype = PRECISIONS[precision]
        self.tagger = AIONERTagger(self.model, self.tokenizer, tokens_per_batch, dtype, compile, tidy_edges)

    # Options of the stock token-classification pipeline have no meaning here (entities are whole
    # spans already; windows never cut a word); dropping them silently would hide a user's mistake.
    OPTIONS = "task= (per call); tokens_per_batch=, compile=, precision=, tidy_edges= (when building the pipeline)"

    def _sanitize_parameters(self, task=None, **kwargs):
        if kwargs:
            hint = " (batching is by tokens: tokens_per_batch= when building it)" if "batch_size" in kwargs else ""
            raise TypeError(f"the AIONER pipeline does not take {sorted(kwargs)}{hint}: its options are {self.OPTIONS}")
        return {"task": task or "ALL"}, {}, {}

    def __call__(self, inputs, task: str = "ALL", **kwargs):
        """Entities of a string (a list of dicts) or of each string of a list (a list of lists)."""
        if kwargs:  # refused there, as at construction
            self._sanitize_parameters(**kwargs)
        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"input {i} is a {type(t).__name__}, not a string")
        results = self.tagger.tag(texts, task)
        return results[0] if single else results

    # The stock Pipeline API, one text at a time, for code that drives the steps itself.
    def preprocess(self, text, task="ALL"):
        return {"text": text, "task": task, "windows": self.tagger.windows(text, task)}

    def _forward(self, model_inputs):
        with denormals_flushed():
            labelled = list(self.tagger.label_windows(model_inputs["windows"], model_inputs["task"]))
        return {"text": model_inputs["text"], "labelled": labelled}

    def postprocess(self, model_outputs):
        return self.tagger.collect([model_outputs["text"]], model_outputs["labelled"])[0]
