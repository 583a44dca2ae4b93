"""The corpora we know: where each comes from, its checksum, and how it maps onto AIO tasks.

Every file is looked for first in a local corpora folder (``$AIONER_CORPORA``, else
``shared/corpora`` beside the source checkout), then in the download cache
(``$AIONER_CACHE``, default ``~/.cache/aioner/corpora``), and only then downloaded
from its public location (``$AIONER_CORPORA_MIRROR`` replaces the public base URLs
with one mirror serving the same relative paths, e.g. a local HTTP server).
A file whose SHA-256 does not match the one recorded here is refused.

Offline: ``AIONER_OFFLINE=1`` (or, when ``AIONER_OFFLINE`` is unset, ``HF_HUB_OFFLINE=1``
or ``HF_DATASETS_OFFLINE=1``) forbids every download, mirror included: a file that is
neither local nor cached raises CorpusUnavailableError at once (the builder then skips
that split), instead of waiting on an unreachable network. ``AIONER_OFFLINE=0`` allows
downloads whatever the Hugging Face variables say. ``$AIONER_DOWNLOAD_TIMEOUT``
(seconds, default 60) bounds the connection and each read of a download.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.constants import ENV_VARS_TRUE_VALUES

from aioner_scheme import DEFAULT_ENTITY_TYPES

AIONER_RAW = "https://raw.githubusercontent.com/ncbi/AIONER/main/data/"
CONLL_RAW = "https://raw.githubusercontent.com/allanj/ner_with_dependency/master/data/conll2003/"
MTL_RAW = "https://raw.githubusercontent.com/cambridgeltl/MTL-Bioinformatics-2016/master/data/"


class CorpusUnavailableError(FileNotFoundError):
    """A corpus file is neither local, nor cached, nor downloadable (or its checksum is wrong)."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the corpora folder (and to a mirror's base URL)
    url: str  # the public location
    sha256: str | None = None  # None: not held here, so never measured; verified when known


@dataclass(frozen=True)
class Corpus:
    """One corpus as one AIO task.

    ``types`` maps each raw type found in the files to an AIO type, or to ``None``
    for a type the corpus annotates but this task does not use (tmVar3's genes, say).
    A raw type missing from the map is an error, so nothing is dropped silently.
    """

    name: str
    task: str
    types: dict[str, str | None]
    splits: dict[str, SourceFile]
    format: str = "pubtator"  # pubtator | iob (word TAB tag) | conll2003 (word POS chunk? tag) | conll
    group: str = "aio"  # aio: the AIONER training corpora; general: GERBERA's; unseen: new types
    fixes: tuple[str, ...] = ()
    dev_from_train: bool = False  # no official dev file: hold out a fixed 10% of train
    notes: str = ""
    license: str = ""

    @property
    def entity_types(self) -> list[str]:
        return list(dict.fromkeys(t for t in self.types.values() if t))


def _pt(name: str, sha: str | None) -> SourceFile:
    return SourceFile(f"pubtator/{name}", AIONER_RAW + f"pubtator/{name}", sha)


def _iob(folder: str, split: str, sha: str | None) -> SourceFile:
    return SourceFile(f"iob/{folder}/{split}.tsv", MTL_RAW + f"{folder}/{split}.tsv", sha)


def _ident(*types):
    return {t: t for t in types}


NCBI_LICENSE = "Public domain (US government work, NCBI)"
MTL_LICENSE = "CC BY 4.0 (cambridgeltl/MTL-Bioinformatics-2016) unless the source corpus says otherwise"

CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in [
        Corpus(
            "BioRED",
            "ALL",
            _ident(*DEFAULT_ENTITY_TYPES),
            {
                "train": _pt(
                    "BioRED_TrainDev.PubTator", "c509b83786ff7a82119d3bce6e28b7508b76decb99c6cad45d6d3dde656138b0"
                ),
                "test": _pt("BioRED_Test.PubTator", "a32f5a56ab7fdf66a435da69660440251ca2dacc288276abcc3d25f9f1c10ea0"),
            },
            dev_from_train=True,
            license=NCBI_LICENSE,
        ),
        Corpus(
            "GNormPlus",
            "Gene",
            {"Gene": "Gene", "FamilyName": "Gene", "DomainMotif": None},
            {
                "train": _pt(
                    "GNormPlus_Train.PubTator", "06cf0e2176249b4c17cfda57178c549bb7e16254c4ebf055bfbf6fbb2a7bbb7f"
                ),
                "test": _pt(
                    "GNormPlus_Test.PubTator", "3d9c230c50d8aa7ae968eaa5eb8108a4c0b885cf48fdea55cc445560c6755da9"
                ),
            },
            dev_from_train=True,
            license=NCBI_LICENSE,
        ),
        Corpus(
            "NLM-Gene",
            "Gene",
            {"Gene": "Gene", "FamilyName": "Gene", "Cell": None, "DomainMotif": None, "ChromosomeLocation": None},
            {
                "train": _pt(
                    "NLMgene_Train.PubTator", "ae941181723d011dd35c085c9c0539b571b5f7b183f0c88edfec9af66862de81"
                ),
                "test": _pt(
                    "NLMgene_Test.PubTator", "3f633d0090bbdc231f4299637632beda0fa93cc1efdeedb2d07c54411334093a"
                ),
            },
            dev_from_train=True,
            license=NCBI_LICENSE,
        ),
        Corpus(
            "NCBI-Disease",
            "Disease",
            {t: "Disease" for t in ("SpecificDisease", "DiseaseClass", "CompositeMention", "Modifier")},
            {
                "train": _pt(
                    "NCBIdisease_TrainDev.PubTator", "849ddde0b6198c44f202b00250a5fc305dc11c3fa9fe1271db5684227ed5cca5"
                ),
                "test": _pt(
                    "NCBIdisease_Test.PubTator", "45f3abeb52102e7ae0bf77341cc56c86900dde0bb5ac8308bbbf8b74a99b2308"
                ),
            },
            dev_from_train=True,
            license=NCBI_LICENSE,
        ),
        Corpus(
            "BC5CDR-Disease",
            "Disease",
            {"Disease": "Disease", "Chemical": None},
            {
                "train": _pt(
                    "BC5CDR_TrainDev.PubTator", "6e548098709c1e42a98645e20b42c00771772151791a3a3098e8255d0db0beaa"
                ),
                "test": _pt("BC5CDR_Test.PubTator", "d4dca7c46d60fcd66a7c61bf45b398ffcecfcdf3332c0626ab1cf41fa9a25b31"),
            },
            dev_from_train=True,
            license="BioCreative V CDR: free for research use",
        ),
        Corpus(
            "BC5CDR-Chemical",
            "Chemical",
            {"Chemical": "Chemical", "Disease": None},
            {
                "train": _pt(
                    "BC5CDR_TrainDev.PubTator", "6e548098709c1e42a98645e20b42c00771772151791a3a3098e8255d0db0beaa"
                ),
                "test": _pt("BC5CDR_Test.PubTator", "d4dca7c46d60fcd66a7c61bf45b398ffcecfcdf3332c0626ab1cf41fa9a25b31"),
            },
            dev_from_train=True,
            license="BioCreative V CDR: free for research use",
        ),
        Corpus(
            "NLM-Chem",
            "Chemical",
            {"Chemical": "Chemical", "OTHER": None, "NonStandardRef": None},
            {
                # Over 4 MiB, so not held in shared/corpora: downloaded when needed, checksum unknown here.
                "train": _pt("NLMchem_TrainDev.PubTator", None),
                "test": _pt(
                    "NLMchem_Test.PubTator", "666a496fef53c6a409e11e207b79f05e90b6093d6837d03cd7559c636aac2b65"
                ),
            },
            dev_from_train=True,
            license=NCBI_LICENSE,
            notes="Training file not held locally: test only offline.",
        ),
        Corpus(
            "Linnaeus",
            "Species",
            _ident("Species"),
            {
                "train": _pt(
                    "Linnaeus_Train.PubTator", "d9f72c6ef6b94e852d0d20d09e85b9c1597581306dc87d1cab3478e0e0e5b0f7"
                ),
                "test": _pt(
                    "Linnaeus_Test.PubTator", "f810a65154c2c6def7064bb78e2b77aa85c2b42c5516bfc14adcd5c0ecd008ec"
                ),
            },
            dev_from_train=True,
            license="BSD (Linnaeus corpus)",
            notes="Test = AIONER's random 20% split.",
        ),
        Corpus(
            "Species-800",
            "Species",
            _ident("Species"),
            {
                "train": _pt(
                    "SPECIES_Train.PubTator", "133d4781632bba5f144688dfa6e1468830bc03d8ab4341673b4d14d64d80df6f"
                ),
                "test": _pt(
                    "SPECIES_Test.PubTator", "d726965f455b9be8b2b03e5d74a1a180cb3b83f86d53247ea6f9301dc7e67bcc"
                ),
            },
            dev_from_train=True,
            license="CC BY 4.0 (S800)",
            notes="Test = AIONER's random 20% split.",
        ),
        Corpus(
            "tmVar3",
            "Variant",
            {
                **{
                    t: "Variant"
                    for t in (
                        "OtherMutation",
                        "ProteinMutation",
                        "DNAMutation",
                        "SNP",
                        "AcidChange",
                        "ProteinAllele",
                        "DNAAllele",
                    )
                },
                "Gene": None,
                "Disease": None,
                "Species": None,
                "CellLine": None,
            },
            {
                "train": _pt(
                    "tmVar3_Train.PubTator", "1a5877747fea7025370cbd28dc236ad333abb948b2323abeea5eaf6d5507fc33"
                ),
                "test": _pt("tmVar3_Test.PubTator", "da986bbfee3b7213284702bcfab738c7a62721e4aad8f09880510dccb02e3ab5"),
            },
            dev_from_train=True,
            license=NCBI_LICENSE,
        ),
        Corpus(
            "BioID",
            "CellLine",
            _ident("CellLine"),
            {
                "train": _pt(
                    "BioID_Train_revision.PubTator", "61da131cf0a09c548189c778cccbd799b524857531f3c651031b54cc5356ef69"
                ),
                "test": _pt(
                    "BioID_Test_revision.PubTator", "6c4d14de95ac3ea4a6aaf3bb14354610823e23679e178909e33796f3ef2c4345"
                ),
            },
            fixes=("strip_cell_suffix",),
            dev_from_train=True,
            license="BioCreative VI BioID: research use",
            notes="Figure captions; AIONER's random 20% test split; trailing 'cell(s)' removed from spans.",
        ),
        # ----- general domain (GERBERA) -----
        Corpus(
            "CoNLL-2003",
            "CoNLL2003",
            _ident("PER", "ORG", "LOC", "MISC"),
            {
                "train": SourceFile(
                    "general/conll2003/train.txt",
                    CONLL_RAW + "train.txt",
                    "7c35b7d44b32ee7ad609a960676526e73c0f3473115a13c55080251c23b2eb6f",
                ),
                "dev": SourceFile(
                    "general/conll2003/dev.txt",
                    CONLL_RAW + "dev.txt",
                    "1c782edac64aebbb255a5d78f84bb50f05290a6a641bbf99051410325cb8f539",
                ),
                "test": SourceFile(
                    "general/conll2003/test.txt",
                    CONLL_RAW + "test.txt",
                    "c449de96cf5b1cc1738c23235165392748821fe281ee134c846ed29c884a9147",
                ),
            },
            format="conll2003",
            group="general",
            license="Reuters-derived: research use",
        ),
        Corpus(
            "OntoNotes",
            "OntoNotes5",
            _ident(
                "PERSON",
                "NORP",
                "FAC",
                "ORG",
                "GPE",
                "LOC",
                "PRODUCT",
                "EVENT",
                "WORK_OF_ART",
                "LAW",
                "LANGUAGE",
                "DATE",
                "TIME",
                "PERCENT",
                "MONEY",
                "QUANTITY",
                "ORDINAL",
                "CARDINAL",
            ),
            {
                # LDC2013T19 is licensed: no public URL. Put CoNLL-format files (word ... tag) here.
                s: SourceFile(f"general/ontonotes/{s}.conll", "", None)
                for s in ("train", "dev", "test")
            },
            format="conll",
            group="general",
            license="LDC2013T19 (licensed; not redistributable)",
            notes="Not downloadable: place CoNLL-format files (word first column, IOB tag last) under general/ontonotes/.",
        ),
        # ----- biomedical sets in IOB -----
        Corpus(
            "JNLPBA",
            "JNLPBA",
            _ident("protein", "DNA", "RNA", "cell_line", "cell_type"),
            {
                "train": _iob("JNLPBA", "train", None),  # over 4 MiB: not held here
                "devel": _iob("JNLPBA", "devel", "462b09bc79a4dd69cec2e70b6041f54383b4b94892d2ee971a587fdc74caae80"),
                "test": _iob("JNLPBA", "test", "87c9b8f1f7fcf94add38c16088203d4ddf35c2f61eb2c7e61240c738d8dd9d35"),
            },
            format="iob",
            group="unseen",
            license=MTL_LICENSE,
            notes="The training file is not held locally: its devel set serves as a low-resource training set.",
        ),
        Corpus(
            "JNLPBA-devel",
            "JNLPBA",
            _ident("protein", "DNA", "RNA", "cell_line", "cell_type"),
            {
                "train": _iob("JNLPBA", "devel", "462b09bc79a4dd69cec2e70b6041f54383b4b94892d2ee971a587fdc74caae80"),
                "test": _iob("JNLPBA", "test", "87c9b8f1f7fcf94add38c16088203d4ddf35c2f61eb2c7e61240c738d8dd9d35"),
            },
            format="iob",
            group="unseen",
            dev_from_train=True,
            license=MTL_LICENSE,
            notes="JNLPBA's devel set as a low-resource training set (a fixed 10% held out as dev), official test set.",
        ),
        Corpus(
            "NCBI-Disease-IOB",
            "Disease",
            _ident("Disease"),
            {
                "train": _iob(
                    "NCBI-disease-IOB", "train", "58379baf4614b8d757d93dd7a21b202849ca99f9b9d71b49185523ff5443300c"
                ),
                "devel": _iob(
                    "NCBI-disease-IOB", "devel", "b4e1e7efcc2a35047bf2f3d281648357470e674f555d4a26a0049ac37d59cc61"
                ),
                "test": _iob(
                    "NCBI-disease-IOB", "test", "8f088ce45dc4746592188f9e69de3d89d87f3bb8f0ed8c4a287d018123fa148d"
                ),
            },
            format="iob",
            group="iob",
            license=MTL_LICENSE,
        ),
        Corpus(
            "AnatEM",
            "AnatEM",
            _ident("Anatomy"),
            {
                "train": _iob(
                    "AnatEM-IOB", "train", "bd4235e9673f7c67667c1eb321903a51544a94cf481ba265b527b3104d6ba806"
                ),
                "devel": _iob(
                    "AnatEM-IOB", "devel", "0758bb2f26ec12fc717c1054b64ea00a40c7aae26b21a7541b86fbfba66119ec"
                ),
                "test": _iob("AnatEM-IOB", "test", "a3d6555f6f5b7809fc014bee975be0db93c012d770ab60c190cf37d589e97fc9"),
            },
            format="iob",
            group="unseen",
            license=MTL_LICENSE,
        ),
        Corpus(
            "BioNLP13CG",
            "BioNLP13CG",
            _ident(
                "Gene_or_gene_product",
                "Cell",
                "Simple_chemical",
                "Cancer",
                "Organism",
                "Multi-tissue_structure",
                "Tissue",
                "Cellular_component",
                "Organ",
                "Pathological_formation",
                "Organism_substance",
                "Amino_acid",
                "Immaterial_anatomical_entity",
                "Organism_subdivision",
                "Developing_anatomical_structure",
                "Anatomical_system",
            ),
            {
                "train": _iob(
                    "BioNLP13CG-IOB", "train", "016ee311428431433c46ceeebeba5fce9c3da9bfd05fafcc484e57a736ea91e7"
                ),
                "devel": _iob(
                    "BioNLP13CG-IOB", "devel", "6c834f3a16ed080940e7e12d831ca8f79458d08db5d6f0c1fdbfe85c3c7a072c"
                ),
                "test": _iob(
                    "BioNLP13CG-IOB", "test", "9ee374ba1b93af177ba3d39dfda4c7e1602bd703d8011bae46a34f3d719cd338"
                ),
            },
            format="iob",
            group="unseen",
            license=MTL_LICENSE,
        ),
        Corpus(
            "AnEM",
            "AnEM",
            _ident(
                "Cell",
                "Multi-tissue_structure",
                "Pathological_formation",
                "Organ",
                "Organism_substance",
                "Tissue",
                "Cellular_component",
                "Organism_subdivision",
                "Anatomical_system",
                "Immaterial_anatomical_entity",
                "Developing_anatomical_structure",
            ),
            {
                "train": SourceFile(
                    "conll/AnEM_train.conll",
                    AIONER_RAW + "conll/AnEM_train.conll",
                    "5f84d3f2b897b3d91c6d782cdeafaf50cea0df4c79ffee9fdba38f588a7d5ab4",
                ),
            },
            format="conll",
            group="unseen",
            dev_from_train=True,
            license="CC BY-SA 3.0 (AnEM)",
            notes="Only the training file is public in AIONER's repository: dev and test are fixed 10% hold-outs.",
        ),
    ]
}

AIO_TRAINING_CORPORA = [c.name for c in CORPORA.values() if c.group == "aio"]


def get_corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise KeyError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    return CORPORA[name]


# ----- finding and fetching files -----
def local_corpora_dir() -> Path | None:
    env = os.environ.get("AIONER_CORPORA")
    if env:
        return Path(env)
    beside_checkout = Path(__file__).resolve().parents[2] / "shared" / "corpora"
    return beside_checkout if beside_checkout.is_dir() else None


def cache_dir() -> Path:
    return Path(os.environ.get("AIONER_CACHE", Path.home() / ".cache" / "aioner" / "corpora"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path, source: SourceFile) -> bool:
    return source.sha256 is None or sha256_of(path) == source.sha256


def downloads_allowed() -> bool:
    """False when the environment asks for offline work (read at call time)."""
    own = os.environ.get("AIONER_OFFLINE")
    if own is not None and own.strip():
        return own.strip().upper() not in ENV_VARS_TRUE_VALUES
    return not any(
        os.environ.get(v, "").strip().upper() in ENV_VARS_TRUE_VALUES for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def fetch(source: SourceFile, *, allow_download: bool = True, timeout: float | None = None) -> Path:
    """A local path holding ``source``: the corpora folder, the cache, or a fresh download.

    ``timeout`` (seconds; default ``$AIONER_DOWNLOAD_TIMEOUT`` or 60) bounds the connection
    and every read. Raises CorpusUnavailableError when the file cannot be had or its
    checksum is wrong; a failed download leaves nothing in the cache.
    """
    local = local_corpora_dir()
    if local is not None and (local / source.path).is_file():
        path = local / source.path
        if not _verified(path, source):
            raise CorpusUnavailableError(f"{path}: SHA-256 {sha256_of(path)} differs from the recorded {source.sha256}")
        return path
    cached = cache_dir() / source.path
    if cached.is_file() and _verified(cached, source):
        return cached
    mirror = os.environ.get("AIONER_CORPORA_MIRROR")
    url = mirror.rstrip("/") + "/" + source.path if mirror else source.url
    offline = not downloads_allowed()
    if not allow_download or not url or offline:
        stale = " (the cached copy's checksum is wrong)" if cached.is_file() else ""
        raise CorpusUnavailableError(
            f"{source.path} is not in the corpora folder ({local}) nor the cache ({cache_dir()}){stale}"
            + ("" if url else ", and it has no public download location")
            + (
                ", and downloads are off (AIONER_OFFLINE / HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)"
                if url and offline
                else ""
            )
        )
    if timeout is None:
        timeout = float(os.environ.get("AIONER_DOWNLOAD_TIMEOUT") or 60)
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Download to a temporary file in the same folder, verify, then rename: never a half file.
    fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=cached.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
        if not _verified(Path(tmp), source):
            raise CorpusUnavailableError(
                f"{url}: downloaded SHA-256 {sha256_of(Path(tmp))} differs from the recorded {source.sha256}"
            )
        os.replace(tmp, cached)
    except CorpusUnavailableError:
        raise
    # OSError: refused, unreachable, timed out, HTTP errors; HTTPException: a connection
    # closed before the announced length; ValueError: a malformed URL (mirror without scheme).
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise CorpusUnavailableError(
            f"could not download {source.path} from {url}: {type(err).__name__}: {err}"
        ) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return cached
