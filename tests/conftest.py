"""Shared fixtures: a tiny random BERT tagger for fast tests and the embedded MiniLM for real ones.

The tiny models themselves are ``aioner.testing`` (the benchmarks use them too); ``tiny_tagger`` is
imported from here by the tests.
"""

import os
import sys
import tempfile
from pathlib import Path

# Remote-code loading writes into $HF_HOME/modules: keep tests out of the user's cache.
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="aioner-hf-home-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from aioner.testing import gene_model, save_tiny_encoder, tiny_tagger  # noqa: E402, F401  (tiny_tagger: tests)

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("AIONER_CORPORA", REPO.parent / "shared" / "corpora"))


def corpus_file(*parts) -> Path:
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus file {path} is not available")
    return path


def pubtator_head(n: int, dest: Path) -> list[str]:
    """The first n documents of BC5CDR (train+dev) as a PubTator file; their ids."""
    text = corpus_file("pubtator", "BC5CDR_TrainDev.PubTator").read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip()][:n]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return [b.split("|", 1)[0] for b in blocks]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, 32-wide random BERT saved like a Hub encoder (a folder), with the embedded tokenizer."""
    return save_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from aioner.checkpoint import save_checkpoint

    model, tokenizer = tiny_tagger()
    return save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def gene_checkpoint(tmp_path_factory):
    """Tiny model whose head calls every word B-Gene in the Gene task and B-Disease in the Disease task."""
    from aioner.checkpoint import save_checkpoint

    return save_checkpoint(*gene_model(("B-Gene", "B-Disease")), tmp_path_factory.mktemp("gene-ckpt"))


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
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd or tempfile.gettempdir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise AssertionError(f"subprocess failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return out.stdout
