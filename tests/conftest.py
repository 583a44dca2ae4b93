"""Shared fixtures: a tiny random BERT tagger for fast tests and the embedded MiniLM for real ones."""

import os
import sys
import tempfile
from pathlib import Path

# Remote-code loading writes into $HF_HOME/modules: keep tests out of the user's cache.
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="aioner-hf-home-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("AIONER_CORPORA", REPO.parent / "shared" / "corpora"))


def corpus_file(*parts) -> Path:
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus file {path} is not available")
    return path


def tiny_tagger(decoder="crf", tasks=None, seed=0):
    """An AIONER model on a 2-layer, 32-wide random BERT, with the embedded tokenizer plus task tags."""
    import torch
    from transformers import BertConfig

    from aioner.checkpoint import resolve_encoder, tokenizer_with_tags
    from aioner_scheme import AIOScheme
    from modeling_aioner import AIONERConfig, AIONERForTokenClassification

    torch.manual_seed(seed)
    scheme = AIOScheme(tasks)
    tokenizer = tokenizer_with_tags(resolve_encoder(None), scheme)
    encoder = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    config = AIONERConfig(encoder_config=encoder.to_dict(), tasks=scheme.to_pairs(), decoder=decoder)
    return AIONERForTokenClassification(config).eval(), tokenizer


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, 32-wide random BERT saved like a Hub encoder (a folder), with the embedded tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from aioner.checkpoint import resolve_encoder

    path = tmp_path_factory.mktemp("tiny-encoder")
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
              ).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_encoder(None)).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from aioner.checkpoint import save_checkpoint

    model, tokenizer = tiny_tagger()
    return save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def minilm_checkpoint(tmp_path_factory):
    """The embedded MiniLM encoder with an untrained head, saved as a checkpoint."""
    from aioner.checkpoint import new_tagger, save_checkpoint

    model, tokenizer = new_tagger()
    return save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("minilm"))


def run_python(code: str, cwd=None, timeout=600) -> str:
    """Run ``code`` in a fresh interpreter (that never imported our modules) and return stdout."""
    import subprocess

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd or tempfile.gettempdir(), env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"subprocess failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return out.stdout
