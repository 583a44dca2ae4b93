"""Options defined once, as dataclass fields, and read by ``transformers.HfArgumentParser``.

``TrainArgs`` holds the training loop's options (``aioner.training.fit`` takes it); ``train.py``
adds its recipe options in a subclass. Kept free of torch so that ``train.py --help`` is quick.

``OptionParser.parse`` reads a command line, a command line over ``--config run.yaml`` (the file's
values become defaults, so any spelling of an option on the command line wins), or a single
YAML/JSON file of options as the transformers example scripts do (``python train.py run.yaml``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from transformers import HfArgumentParser


@dataclass
class TrainArgs:
    """The training loop's options; fields with ``init=False`` are fixed, not command-line options."""

    output_dir: str | None = field(default=None, metadata={"help": "default: runs/<recipe>"})
    epochs: int | None = field(default=None, metadata={"help": "default: 20 (the quickstart recipe: 2)"})
    patience: int = field(default=5, metadata={"help": "early stop after %(default)s epochs without a better dev F1"})
    batch_size: int = field(default=32, metadata={"help": "windows per batch (default: %(default)s)"})
    learning_rate: float | None = field(default=None, metadata={"help": "encoder learning rate (default: per encoder)"})
    head_learning_rate: float = field(
        default=1e-3, metadata={"help": "learning rate of the layers above the encoder (default: %(default)s)"}
    )
    weight_decay: float = field(default=0.01, init=False)
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "share of the optimizer steps spent warming up (default: %(default)s)"}
    )
    grad_accum: int = field(default=1, metadata={"help": "batches per optimizer step (default: %(default)s)"})
    max_grad_norm: float = field(default=1.0, init=False)
    max_steps: int = field(default=0, metadata={"help": "stop after N optimizer steps (0: no limit)"})
    save_steps: int = field(default=0, metadata={"help": "also save training state every N steps (0: once per epoch)"})
    keep_states: int = field(default=1, init=False)  # train_state folders kept
    eval_batch_tokens: int = field(default=16384, init=False)  # sub-words per dev-evaluation batch
    seed: int = field(
        default=0, metadata={"help": "seed of initialisation, sampling and batch order (default: %(default)s)"}
    )
    mixed_precision: Literal["no", "bf16", "fp16"] | None = field(
        default=None,
        metadata={"help": "default: accelerate's setting; the quickstart uses bf16 where the CPU has native bf16"},
    )
    bf16: bool = field(
        default=False,
        metadata={
            "help": "= --mixed_precision bf16: bf16 autocast over fp32 master weights, the CRF in fp32 "
            "(results/bf16_training_cpu.json)"
        },
    )
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "a train_state folder, or 'latest'"})
    # What the run is (recipe, encoder, corpora...): recorded in training_args.json, checked on resume.
    extra: dict = field(default_factory=dict, init=False)

    def __post_init__(self):
        if self.bf16:
            if self.mixed_precision not in (None, "bf16"):
                raise ValueError(f"--bf16 contradicts --mixed_precision {self.mixed_precision}")
            self.mixed_precision = "bf16"


class OptionParser(HfArgumentParser):
    """HfArgumentParser over one dataclass, spelling its options as argparse did before it.

    Two departures from HfArgumentParser, so that existing command lines keep their meaning:
    each field is ``--name`` only (the ``--name-with-dashes`` twin it adds would make
    abbreviations such as ``--output`` ambiguous), and a list field takes ``nargs`` from its
    metadata (HfArgumentParser always uses "+"; ``--eval_test`` may name no corpus at all).
    """

    def __init__(self, dataclass_type, **kwargs):
        super().__init__(dataclass_type, **kwargs)
        self.add_argument(
            "--config", help="YAML file of options (keys = option names without dashes); command-line options win"
        )

    @staticmethod
    def _parse_dataclass_field(parser, option):
        HfArgumentParser._parse_dataclass_field(_AsDeclared(parser, option.metadata), option)

    def parse(self, argv=None):
        """The dataclass from ``argv`` (default: ``sys.argv[1:]``); argparse's usage errors on bad options."""
        argv = sys.argv[1:] if argv is None else list(argv)
        if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
            read = self.parse_json_file if argv[0].endswith(".json") else self.parse_yaml_file
            try:
                return read(argv[0])[0]
            except ValueError as err:  # an unknown key, or values the dataclass refuses
                self.error(f"{argv[0]}: {err}")
        config = self.parse_known_args(argv)[0].config
        if config:
            options = yaml.safe_load(Path(config).read_text()) or {}
            unknown = set(options) - {a.dest for a in self._actions}
            if unknown:
                self.error(f"unknown options in {config}: {sorted(unknown)}")
            self.set_defaults(**options)
        try:
            args, *_, rest = self.parse_args_into_dataclasses(
                argv, return_remaining_strings=True, look_for_args_file=False
            )
        except ValueError as err:  # the dataclass refuses the combination (__post_init__)
            self.error(str(err))
        if rest:
            self.error(f"unrecognized arguments: {' '.join(rest)}")
        return args


class _AsDeclared:
    """The parser as HfArgumentParser sees it, with its two departures applied (see OptionParser)."""

    def __init__(self, parser, metadata):
        self.parser, self.metadata = parser, metadata

    def add_argument(self, *names, **kwargs):
        if "nargs" in self.metadata:
            kwargs["nargs"] = self.metadata["nargs"]
        return self.parser.add_argument(*[n for n in names if "-" not in n.lstrip("-")], **kwargs)
