"""The model side of domain-adaptive pre-training (``aioner/mlm_data.py`` is the text side).

The encoder with its MLM head: loaded (a fresh head, tied to the input embeddings, where the
encoder was saved without one), wrapped so that the loss needs the head on masked positions only,
its optimizer groups, its held-out loss; and the adapted encoder saved with its record and card,
and pushed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from .checkpoint import resolve_encoder
from .encoders import DEFAULT_ENCODER
from .model_card import write_mlm_model_card

# Hub ids and licenses of the embedded encoders, for the card's base_model and license.
BASE_MODEL_IDS = {
    DEFAULT_ENCODER: "sentence-transformers/all-MiniLM-L6-v2",
    "embedded:all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2",
}
BASE_MODEL_LICENSES = {DEFAULT_ENCODER: "apache-2.0", "embedded:all-mpnet-base-v2": "apache-2.0"}


# ----- the model -----
def load_mlm_model(encoder: str | None):
    """(model with an MLM head, tokenizer, resolved path, names of weights initialised here)."""
    path = resolve_encoder(encoder)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.mask_token is None:
        raise ValueError(f"the tokenizer of {encoder or path} has no mask token: it cannot do masked-LM training")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the head's "missing" weights are reported on the card instead
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    if not heads_tied(model) and model.get_output_embeddings() is not None:
        model.tie_weights()  # a head loaded without weights: its decoder shares the input embeddings
    initialised = sorted(info.get("missing_keys") or [])
    return model, tokenizer, path, initialised


def heads_tied(model) -> bool:
    out_emb = model.get_output_embeddings()
    return out_emb is not None and out_emb.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


class MaskedOnlyLoss(torch.nn.Module):
    """An MLM model's loss with the head applied to the masked positions only.

    ``*ForMaskedLM`` models score every position against the whole vocabulary (for a
    384-wide encoder that is as much work as the encoder itself); the loss needs only the
    ~15% masked ones. Same loss, about half the compute. Wraps the model so that Accelerate
    (DDP) sees one module; ``self.model`` is what is saved.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        prefix = model.base_model_prefix
        others = [m for name, m in model.named_children() if name != prefix]
        if not hasattr(model, prefix) or len(others) != 1:
            raise ValueError(f"{type(model).__name__}: cannot tell its encoder from its MLM head")
        self.head = others[0]

    def forward(self, input_ids, attention_mask, labels):
        hidden = getattr(self.model, self.model.base_model_prefix)(input_ids=input_ids, attention_mask=attention_mask)[
            0
        ]
        chosen = labels != -100
        if not chosen.any():  # nothing masked: a zero loss that still touches the graph
            return hidden.sum() * 0.0
        logits = self.head(hidden[chosen])
        return torch.nn.functional.cross_entropy(logits.float(), labels[chosen])


def param_groups(model, new_weights: set[str], weight_decay: float) -> list[dict]:
    """AdamW groups: pre-trained weights apart from the weights initialised here (a new MLM head).

    With --head_warmup_steps the pre-trained ones keep learning rate 0 at first, so that a random
    head's first large gradients do not rewrite the encoder. (A learning rate of 0 rather than
    frozen weights: under several ranks DDP needs the same weights to take gradients throughout.)
    """
    groups = []
    for pretrained in (True, False):
        for decay in (True, False):
            params = [
                p
                for n, p in model.named_parameters()
                if (n not in new_weights) == pretrained and ("bias" in n or "norm" in n.lower()) != decay
            ]
            if params:
                groups.append(
                    {"params": params, "weight_decay": weight_decay if decay else 0.0, "pretrained": pretrained}
                )
    return groups


@torch.no_grad()
def evaluate_loss(model, batches, device) -> float:
    """Mean masked-token cross-entropy over fixed, pre-masked batches."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        n = int((batch["labels"] != -100).sum())
        if n:
            total += float(model(**batch)) * n
            count += n
    model.train(was_training)
    return total / count if count else float("nan")


# ----- the output -----
def save(out: Path, model, tokenizer, record: dict, train_docs, heldout_docs, model_id: str) -> None:
    """The adapted encoder with its MLM head, the tokenizer, the record, the document list and the card."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "mlm_training.json").write_text(json.dumps(record, indent=1))
    with open(out / "pretraining_documents.tsv", "w") as f:
        f.write("corpus\tdocument_id\trole\n")
        for role, docs in (("train", train_docs), ("heldout", heldout_docs)):
            for corpus, doc_id, _ in docs:
                f.write(f"{corpus}\t{doc_id}\t{role}\n")
    write_mlm_model_card(out, record, model_id)


def base_model_id(encoder: str | None) -> str | None:
    """The Hub id the encoder came from, for the card's ``base_model`` (None when unknown)."""
    encoder = encoder or DEFAULT_ENCODER
    if encoder in BASE_MODEL_IDS:
        return BASE_MODEL_IDS[encoder]
    if Path(encoder).exists():
        card = Path(encoder) / "mlm_training.json"  # an adapted encoder adapted again: its own base
        if card.exists():
            return json.loads(card.read_text()).get("base_model")
        return None
    return encoder if "/" in encoder else None


def push(out: Path, repo_id: str) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(out), repo_id=repo_id)
    print(f"pushed {out} to https://huggingface.co/{repo_id}")
