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

from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import Pipeline

try:  # inside a checkpoint folder these are sibling modules
    from .aioner_scheme import AIOScheme, build_input, reserved_length, windows, word_pieces
    from .aioner_text import segment
except ImportError:  # from a source checkout or an installed package
    from aioner_scheme import AIOScheme, build_input, reserved_length, windows, word_pieces
    from aioner_text import segment

# Padded sub-words per forward batch: large enough to keep the matmuls efficient, small enough
# that the activations stay in cache. Measured on a 2-core CPU (MiniLM, BioRED test): 2,048
# tags 12.3 docs/s, 8,192 9.2 docs/s. GPUs want bigger batches to fill the device.
CPU_TOKENS_PER_BATCH = 2048
GPU_TOKENS_PER_BATCH = 16384
DEFAULT_TOKENS_PER_BATCH = None  # by device, at the first batch


@dataclass
class Window:
    """One model input: a run of whole words of one sentence of one text."""

    text_index: int
    input_ids: list[int]
    firsts: list[int]  # position of each word's first sub-word in input_ids
    words: list[tuple[int, int]]  # character span of each word in its text


def length_batches(items, tokens_per_batch: int) -> list[list]:
    """Length-sorted batches (of anything with ``input_ids``) whose padded size stays within the budget."""
    out, cur = [], []
    for item in sorted(items, key=lambda w: len(w.input_ids)):
        if cur and len(item.input_ids) * (len(cur) + 1) > tokens_per_batch:
            out.append(cur)
            cur = []
        cur.append(item)
    if cur:
        out.append(cur)
    return out


class AIONERTagger:
    """Batched tagging of many texts with one model: the engine behind pipeline and CLI."""

    def __init__(self, model, tokenizer, tokens_per_batch: int | None = DEFAULT_TOKENS_PER_BATCH,
                 autocast_dtype: torch.dtype | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.scheme = AIOScheme(model.config.tasks)
        if tokens_per_batch is None:
            on_gpu = next(model.parameters()).device.type != "cpu"
            tokens_per_batch = GPU_TOKENS_PER_BATCH if on_gpu else CPU_TOKENS_PER_BATCH
        self.tokens_per_batch = tokens_per_batch
        self.autocast_dtype = autocast_dtype
        limits = [model.config.window_length]
        max_pos = getattr(model.encoder.config, "max_position_embeddings", None)
        if max_pos:
            limits.append(max_pos)
        if 0 < getattr(tokenizer, "model_max_length", 0) < 10**6:
            limits.append(tokenizer.model_max_length)
        self.budget = min(limits) - reserved_length(tokenizer)
        self._piece_cache: dict[str, list[int]] = {}
        # Tiny CRF scores and probabilities can be denormal floats, which x86 CPUs process up to
        # ~100x slower (seen: Viterbi 5.7 s -> 0.05 s). Flushing them to zero changes no decision.
        torch.set_flush_denormal(True)

    # ----- text -> windows -----
    def windows(self, text: str, task: str, text_index: int = 0,
                passages: Sequence[tuple[int, int]] | None = None) -> list[Window]:
        """Windows of ``text``; ``passages`` (start, end) are segmented separately (title, abstract)."""
        self.scheme.check_task(task)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates ("\ud800" JSON escapes) cannot be tokenized:
            text = text.encode("utf-8", "replace").decode("utf-8")  # "?" each, so offsets stay the same
        out = []
        for start, end in passages or [(0, len(text))]:
            for sentence in segment(text[start:end], offset=start):
                pieces = word_pieces(self.tokenizer, [text[s:e] for s, e in sentence], self._piece_cache)
                for a, b in windows([len(p) for p in pieces], self.budget):
                    ids, firsts = build_input(self.tokenizer, pieces[a:b], task, self.budget)
                    out.append(Window(text_index, ids, firsts, sentence[a:b]))
        if len(self._piece_cache) > 500_000:  # bounded memory over PubMed-scale runs
            self._piece_cache.clear()
        return out

    def batches(self, wins: list[Window]) -> list[list[Window]]:
        return length_batches(wins, self.tokens_per_batch)

    def collate(self, batch: list[Window]) -> dict[str, torch.Tensor]:
        width = max(len(w.input_ids) for w in batch)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        word_mask = torch.zeros((len(batch), width), dtype=torch.bool)
        for i, w in enumerate(batch):
            ids[i, : len(w.input_ids)] = torch.tensor(w.input_ids)
            attention[i, : len(w.input_ids)] = 1
            word_mask[i, w.firsts] = True
        return {"input_ids": ids, "attention_mask": attention, "word_mask": word_mask}

    # ----- windows -> entities -----
    @torch.inference_mode()
    def label_windows(self, wins: list[Window], task: str):
        """(window, word label ids, word confidences) for every window, in batch order."""
        allowed = self.scheme.allowed_label_ids(task)
        device = next(self.model.parameters()).device
        for batch in self.batches(wins):
            inputs = {k: v.to(device) for k, v in self.collate(batch).items()}
            with torch.autocast(device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                logits, _ = self.model.emissions(inputs["input_ids"], inputs["attention_mask"])
            paths, scores = self.model.decode_emissions(logits, inputs["word_mask"], allowed, with_scores=True)
            yield from zip(batch, paths, scores)

    def entities(self, text: str, window: Window, path: list[int], scores: list[float]) -> list[dict]:
        out = []
        for span in self.scheme.decode(path):
            start, end = window.words[span.start][0], window.words[span.end - 1][1]
            score = sum(scores[span.start : span.end]) / (span.end - span.start)
            out.append({"entity_group": span.type, "type": span.type, "score": float(score),
                        "word": text[start:end], "text": text[start:end], "start": start, "end": end})
        return out

    def tag(self, texts: Sequence[str], task: str = "ALL",
            passages: Sequence[Sequence[tuple[int, int]] | None] | None = None) -> list[list[dict]]:
        """Entities of each text, sorted by offset."""
        wins = []
        for i, text in enumerate(texts):
            wins.extend(self.windows(text, task, i, passages[i] if passages else None))
        results: list[list[dict]] = [[] for _ in texts]
        for window, path, scores in self.label_windows(wins, task):
            results[window.text_index].extend(self.entities(texts[window.text_index], window, path, scores))
        for r in results:
            r.sort(key=lambda e: (e["start"], e["end"]))
        return results


class AIONERTokenClassificationPipeline(Pipeline):
    """``pipeline("token-classification", model=..., trust_remote_code=True)`` for AIONER checkpoints."""

    def __init__(self, *args, tokens_per_batch: int | None = DEFAULT_TOKENS_PER_BATCH, **kwargs):
        super().__init__(*args, **kwargs)
        self.tagger = AIONERTagger(self.model, self.tokenizer, tokens_per_batch)

    def _sanitize_parameters(self, task=None, **kwargs):
        return {"task": task or "ALL"}, {}, {}

    def __call__(self, inputs, task: str = "ALL", **kwargs):
        """Entities of a string (a list of dicts) or of each string of a list (a list of lists)."""
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
        labelled = list(self.tagger.label_windows(model_inputs["windows"], model_inputs["task"]))
        return {"text": model_inputs["text"], "labelled": labelled}

    def postprocess(self, model_outputs):
        text = model_outputs["text"]
        ents = [e for w, p, s in model_outputs["labelled"] for e in self.tagger.entities(text, w, p, s)]
        return sorted(ents, key=lambda e: (e["start"], e["end"]))
