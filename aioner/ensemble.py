"""Ensembles of AIONER checkpoints that share a label set (other seeds, other encoders).

The transfer-learning framework's system combines several encoders. Here the members'
emission scores are averaged word by word and decoded once: with the averaged CRF
transitions for CRF heads, and by soft voting (the mean of the members' label
probabilities, then the best label) for softmax heads. An ensemble behaves like one
model, so the batched tagger, the pipeline and ``aioner-tag --model A B C`` use it as is.

Members must share the label set, the decoder and the tokenizer's vocabulary (the
emissions are averaged per sub-word position, so every member must cut the text into the
same sub-words): several seeds or recipes of one encoder, or encoders that share a
vocabulary (e.g. BioBERT and a BioBERT fine-tune). Members with other vocabularies are
refused with a clear error.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torchcrf import CRF

from modeling_aioner import AIONERForTokenClassification


class AIONEREnsemble(nn.Module):
    """Several taggers used as one: the interface the tagger needs (config, encoder, emissions, decode)."""

    def __init__(self, members: Sequence[AIONERForTokenClassification]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one model")
        first = members[0]
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
        # A copy: the ensemble answers the tasks every member was trained on, member 0 keeps its own record.
        self.config = copy.deepcopy(first.config)
        records = [getattr(m.config, "trained_tasks", None) for m in members]
        if all(r is not None for r in records):
            self.config.trained_tasks = {t: e for t, e in records[0].items() if all(t in r for r in records[1:])}
        else:
            self.config.trained_tasks = None
        self.crf = None
        if first.crf is not None:
            # One CRF whose scores are the members' averages: decoding once with it is exact
            # Viterbi over the averaged model (and equals the member for an ensemble of one).
            self.crf = CRF(first.config.num_labels, batch_first=True)
            with torch.no_grad():
                for name in ("start_transitions", "end_transitions", "transitions"):
                    mean = torch.stack([getattr(m.crf, name) for m in members]).mean(0)
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

    def emissions(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs):
        """Averaged emission scores (CRF) or the log of averaged probabilities (softmax: soft vote)."""
        each = torch.stack([m.emissions(input_ids, attention_mask, token_type_ids)[0] for m in self.members])
        if self.crf is not None:
            return each.mean(0), None
        return each.softmax(-1).mean(0).log(), None

    decode_emissions = AIONERForTokenClassification.decode_emissions


def load_ensemble(
    checkpoints: Sequence[str], device: str | torch.device | None = None, *, allow_pickle: bool | None = None
):
    """(model, tokenizer): one checkpoint as itself, several as an ``AIONEREnsemble``.
    ``allow_pickle``: as in ``aioner.checkpoint.load_checkpoint`` (safetensors only unless allowed)."""
    from aioner.checkpoint import load_checkpoint

    loaded = [load_checkpoint(c, device, allow_pickle=allow_pickle) for c in checkpoints]
    if len(loaded) == 1:
        return loaded[0]
    tokenizer = loaded[0][1]
    vocab = tokenizer.get_vocab()
    for path, (_, tok) in zip(checkpoints[1:], loaded[1:]):
        if tok.get_vocab() != vocab:
            raise ValueError(
                f"{path}: its tokenizer's vocabulary differs from {checkpoints[0]}'s; ensemble members "
                "must cut text into the same sub-words (same encoder family)"
            )
    try:
        ensemble = AIONEREnsemble([m for m, _ in loaded])
    except ValueError as err:
        raise ValueError(f"cannot ensemble {', '.join(map(str, checkpoints))}: {err}") from None
    return ensemble.eval(), tokenizer


def ensemble_pipeline(checkpoints: Sequence[str], device=None, **kwargs):
    """The token-classification pipeline over an ensemble: ``ensemble_pipeline([a, b])("text")``."""
    from pipeline_aioner import AIONERTokenClassificationPipeline

    model, tokenizer = load_ensemble(checkpoints)
    return AIONERTokenClassificationPipeline(
        model=model,
        tokenizer=tokenizer,
        task="token-classification",
        device=device if device is not None else -1,
        **kwargs,
    )
