"""Ensembles of AIONER checkpoints that share a label set (other seeds, other encoders).

The transfer-learning framework's system combines several encoders (BioBERT and SciBERT: two
vocabularies). Here the members' emission scores are averaged word by word, uniformly or with
weights, and decoded once: with the averaged CRF transitions for CRF heads, and by soft voting
(the mean of the members' label probabilities, then the best label) for softmax heads.

* ``EnsembleTagger`` (``aioner-tag --model A B``, ``ensemble_pipeline``): any tokenizers. The CRF
  runs over words, and every member sees the same words (``aioner_text`` cuts them), so one set
  of windows is planned at the word level, with the largest sub-word count any member's
  tokenizer gives each word; each member then reads those words in its own sub-words, and its
  scores at each word's first sub-word are averaged.
* ``AIONEREnsemble``: the averaged model itself (labels, decoder, CRF); with members that share a
  vocabulary it also behaves as one model on sub-word inputs (``emissions``), so
  ``AIONERTagger`` and the stock pipeline take it as is.

Members must share the label set, the decoder and the context setting (a window is planned once
for all), and have one output layer for all tasks (not the MTL baseline).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torchcrf import CRF

from aioner_scheme import check_trained
from modeling_aioner import AIONERForTokenClassification
from pipeline_aioner import DEFAULT_TOKENS_PER_BATCH, AIONERTagger, Window


class AIONEREnsemble(nn.Module):
    """Several taggers used as one: the interface the tagger needs (config, encoder, emissions, decode)."""

    def __init__(self, members: Sequence[AIONERForTokenClassification], weights: Sequence[float] | None = None):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one model")
        first = members[0]
        for i, m in enumerate(members):
            if getattr(m.config, "output_layers", "shared") == "per_task":
                raise ValueError(f"ensemble member {i} has one output layer per task (MTL): it cannot be ensembled")
            setting = (getattr(m.config, "context", "sentence"), getattr(m.config, "context_margin", 0))
            if setting != (getattr(first.config, "context", "sentence"), getattr(first.config, "context_margin", 0)):
                raise ValueError(
                    f"ensemble member {i} reads windows with context {setting}, member 0 differently: "
                    "members must share the context setting (one set of windows serves all)"
                )
        for i, m in enumerate(members[1:], 1):
            if m.config.id2label != first.config.id2label:
                raise ValueError(
                    f"ensemble member {i} has labels {list(m.config.id2label.values())}, "
                    f"member 0 {list(first.config.id2label.values())}: members must share a label set"
                )
            if m.config.decoder != first.config.decoder:
                raise ValueError(
                    f"ensemble member {i} decodes with {m.config.decoder}, member 0 with "
                    f"{first.config.decoder}: members must share the decoder"
                )
        self.members = nn.ModuleList(members)
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"ensemble weights {weights}: one non-negative weight per member, not all zero")
        # Normalized; kept off the state dict (an ensemble is not saved, its members are).
        self.register_buffer("weights", torch.tensor(weights) / sum(weights), persistent=False)
        # A copy: the ensemble answers the tasks every member was trained on, member 0 keeps its own record.
        self.config = copy.deepcopy(first.config)
        records = [getattr(m.config, "trained_tasks", None) for m in members]
        if all(r is not None for r in records):
            self.config.trained_tasks = {t: e for t, e in records[0].items() if all(t in r for r in records[1:])}
        else:
            self.config.trained_tasks = None
        self.crf = None
        if first.crf is not None:
            # One CRF whose scores are the members' (weighted) averages: decoding once with it is
            # exact Viterbi over the averaged model (and equals the member for an ensemble of one).
            self.crf = CRF(first.config.num_labels, batch_first=True)
            with torch.no_grad():
                for name in ("start_transitions", "end_transitions", "transitions"):
                    mean = self.combine(torch.stack([getattr(m.crf, name) for m in members]), probabilities=False)
                    getattr(self.crf, name).copy_(mean)
            self.crf.to(next(first.parameters()).device)

    @property
    def encoder(self):  # the tagger reads the encoder's position limit from here
        return self.members[0].encoder

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def can_generate(self) -> bool:  # asked by transformers' Pipeline
        return False

    def combine(self, each: torch.Tensor, probabilities: bool | None = None) -> torch.Tensor:
        """The members' scores ``[members, ...]`` as one: their weighted mean (CRF scores), or the log
        of their weighted mean probability (softmax heads: soft voting)."""
        probabilities = self.crf is None if probabilities is None else probabilities
        w = self.weights.to(each.device).reshape(-1, *[1] * (each.dim() - 1))
        if not probabilities:
            return (each * w).sum(0)
        return (each.softmax(-1) * w).sum(0).log()

    def emissions(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
        """Averaged emission scores (CRF) or the log of averaged probabilities (softmax: soft vote),
        per sub-word: for members that share a vocabulary."""
        each = torch.stack([m.emissions(input_ids, attention_mask, token_type_ids)[0] for m in self.members])
        return self.combine(each), None

    decode_emissions = AIONERForTokenClassification.decode_emissions


@dataclass
class EnsembleWindow(Window):
    """One planned window: the same words in every member's sub-words (``input_ids``: the longest's,
    for batching by length)."""

    members: tuple[Window, ...] = ()


class EnsembleTagger(AIONERTagger):
    """Members with any tokenizers tagging as one: their word-level scores averaged, one decoding.

    ``members``: (model, tokenizer) pairs; ``weights``: one per member (default: uniform), e.g.
    chosen on a dev set. The other arguments are ``AIONERTagger``'s, for every member.
    """

    def __init__(
        self,
        members: Sequence[tuple[AIONERForTokenClassification, object]],
        tokens_per_batch: int | None = DEFAULT_TOKENS_PER_BATCH,
        autocast_dtype: torch.dtype | str | None = None,
        compile: bool = False,
        weights: Sequence[float] | None = None,
        tidy_edges: bool = True,
    ):
        ensemble = AIONEREnsemble([m for m, _ in members], weights).eval()
        super().__init__(ensemble, members[0][1], tokens_per_batch, autocast_dtype, tidy_edges=tidy_edges)
        with warnings.catch_warnings():  # a missing training record was reported once, just above
            warnings.simplefilter("ignore", UserWarning)
            self.taggers = [AIONERTagger(m, t, self.tokens_per_batch, autocast_dtype, compile) for m, t in members]
        # Planned once for all: a window must fit the member with the fewest free positions.
        self.budget = min(t.budget for t in self.taggers)

    def windows_of(self, texts, task, passages=None, first_index=0, only=None) -> list[EnsembleWindow]:
        """``AIONERTagger.windows_of``, planned over the words (see the module docstring)."""
        check_trained(self.scheme.check_task(task), self.trained_tasks)
        groups = self.word_groups(texts, passages, first_index, only)
        pieces = [t.pieces_of(groups) for t in self.taggers]
        counts = [
            [max(len(p[g][w]) for p in pieces) for w in range(len(group.words))] for g, group in enumerate(groups)
        ]
        out = []
        for g, cut in self.plan(groups, counts, self.budget):
            each = tuple(t.window(groups[g], p[g], cut, task, self.budget) for t, p in zip(self.taggers, pieces))
            longest = max(each, key=lambda w: len(w.input_ids))
            out.append(EnsembleWindow(longest.text_index, longest.input_ids, longest.firsts, longest.words, each))
        return out

    def word_emissions(self, batch: list[EnsembleWindow], task_id=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The members' word-level scores, combined (``AIONEREnsemble.combine``)."""
        each = [t.word_emissions([w.members[k] for w in batch]) for k, t in enumerate(self.taggers)]
        mask = each[0][1]
        for k, (_, m) in enumerate(each[1:], 1):
            if not torch.equal(m.cpu(), mask.cpu()):  # a planning bug, never a user's input
                raise RuntimeError(f"ensemble member {k} read other words than member 0")
        scores = torch.stack([e.to(mask.device) for e, _ in each])
        return self.model.combine(scores), mask


def load_members(checkpoints: Sequence[str], device=None, *, allow_pickle: bool | None = None) -> list[tuple]:
    """(model, tokenizer) of each checkpoint (``aioner.checkpoint.load_checkpoint``: safetensors only unless
    ``allow_pickle``)."""
    from aioner.checkpoint import load_checkpoint

    return [load_checkpoint(c, device, allow_pickle=allow_pickle) for c in checkpoints]


def load_ensemble(
    checkpoints: Sequence[str], device: str | torch.device | None = None, *, allow_pickle: bool | None = None
):
    """(model, tokenizer): one checkpoint as itself, several that share a vocabulary as an
    ``AIONEREnsemble`` (a drop-in model). Members with other vocabularies: ``load_tagger``."""
    loaded = load_members(checkpoints, device, allow_pickle=allow_pickle)
    if len(loaded) == 1:
        return loaded[0]
    tokenizer = loaded[0][1]
    vocab = tokenizer.get_vocab()
    for path, (_, tok) in zip(checkpoints[1:], loaded[1:]):
        if tok.get_vocab() != vocab:
            raise ValueError(
                f"{path}: its tokenizer's vocabulary differs from {checkpoints[0]}'s; an AIONEREnsemble "
                "averages per sub-word, so use aioner.ensemble.load_tagger (word-level averaging)"
            )
    try:
        ensemble = AIONEREnsemble([m for m, _ in loaded])
    except ValueError as err:
        raise ValueError(f"cannot ensemble {', '.join(map(str, checkpoints))}: {err}") from None
    return ensemble.eval(), tokenizer


def load_tagger(
    checkpoints: Sequence[str],
    device=None,
    weights: Sequence[float] | None = None,
    *,
    allow_pickle: bool | None = None,
    **tagger_kwargs,
) -> AIONERTagger:
    """The tagging engine of one checkpoint (``AIONERTagger``) or of several (``EnsembleTagger``, any
    tokenizers). ``tagger_kwargs``: ``tokens_per_batch``, ``autocast_dtype``, ``compile``, ``tidy_edges``."""
    loaded = load_members(checkpoints, device, allow_pickle=allow_pickle)
    if len(loaded) == 1:
        if weights is not None and len(weights) != 1:
            raise ValueError(f"{len(weights)} ensemble weights for one model")
        return AIONERTagger(*loaded[0], **tagger_kwargs)
    try:
        return EnsembleTagger(loaded, weights=weights, **tagger_kwargs)
    except ValueError as err:
        raise ValueError(f"cannot ensemble {', '.join(map(str, checkpoints))}: {err}") from None


def ensemble_pipeline(checkpoints: Sequence[str], device=None, weights=None, precision: str = "fp32", **kwargs):
    """The token-classification pipeline over an ensemble: ``ensemble_pipeline([a, b])("text")``.
    ``kwargs``: the pipeline's (``tokens_per_batch``, ``compile``)."""
    from pipeline_aioner import PRECISIONS, AIONERTokenClassificationPipeline

    tagger = load_tagger(checkpoints, weights=weights, autocast_dtype=PRECISIONS[precision], **kwargs)
    with warnings.catch_warnings():  # its own engine is replaced below (and reported on once)
        warnings.simplefilter("ignore", UserWarning)
        pipe = AIONERTokenClassificationPipeline(
            model=tagger.model,
            tokenizer=tagger.tokenizer,
            task="token-classification",
            device=device if device is not None else -1,
            precision=precision,
            **kwargs,
        )
    pipe.tagger = tagger  # the ensemble's engine: word-level averaging over every member's own sub-words
    return pipe
