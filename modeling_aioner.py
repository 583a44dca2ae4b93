"""AIONER for token classification: encoder -> [BiLSTM] -> Dense+ReLU -> dropout -> Linear -> CRF.

One class serves both systems the AIONER paper compares: the AIO model (one output layer
shared by every task, each sentence wrapped in its task's tags) and the multi-task (MTL)
baseline (``output_layers="per_task"``: one Dense+ReLU -> Linear -> CRF per task, i.e. per
training dataset, over the shared encoder, and no task tags). Both save, load and tag alike;
``task=`` picks the tag or the output layer.

This file travels inside every checkpoint and is loaded with
``AutoModelForTokenClassification.from_pretrained(path, trust_remote_code=True)``.
It uses only torch, public transformers APIs and pytorch-crf, plus the AIO scheme
file that travels beside it.

The CRF runs over *words*, not sub-words: padding, special tokens, task tags and
every sub-word but a word's first are packed out before the CRF sees the
sequence (the original AIONER lets padding into its CRF, so padding changes its
scores). ``word_mask`` marks the first sub-words; in training it defaults to
``labels != -100``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torchcrf import CRF
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

try:  # transformers releases whose composite configs declare their sub-configs with specs
    from transformers.configuration_utils import SubConfigSpec
except ImportError:  # earlier ones: the plain ``sub_configs`` mapping
    SubConfigSpec = None

try:  # inside a checkpoint folder the scheme is a sibling module
    from .aioner_scheme import CONTEXTS, DEFAULT_MAX_LENGTH, AIOScheme, labelled_budget
except ImportError:  # from a source checkout or an installed package
    from aioner_scheme import CONTEXTS, DEFAULT_MAX_LENGTH, AIOScheme, labelled_budget

DECODERS = ("crf", "softmax")
HEADS = ("dense", "bilstm")
OUTPUT_LAYERS = ("shared", "per_task")
# Added to the emissions of labels a task may not output: large enough to never be
# chosen, small enough that fp32 arithmetic stays finite.
_FORBIDDEN = -1.0e4


def _as_encoder_config(value) -> PretrainedConfig:
    """The encoder's config from a config, a dict with ``model_type`` (how configs saved before the
    sub-config stored it, and what ``config.to_dict()`` gives) or ``None`` (a default BERT)."""
    if isinstance(value, PretrainedConfig):
        return value
    cfg = dict(value if value is not None else {"model_type": "bert"})
    model_type = cfg.pop("model_type", None)
    if model_type is None:
        raise ValueError("encoder_config has no model_type: cannot tell which encoder to build")
    return AutoConfig.for_model(model_type, **cfg)


class AIONERConfig(PretrainedConfig):
    r"""Configuration of an AIONER tagger ([`AIONERForTokenClassification`]).

    Args:
        encoder_config (`PretrainedConfig` or `dict`, *optional*):
            The encoder's config, a sub-config of this one. A dict (``model_type`` included, e.g.
            ``BertConfig(...).to_dict()``, and how configs saved before it was a sub-config hold it)
            is turned into the config of that model type. Defaults to a default BERT.
        tasks (`dict` or `list`, *optional*):
            Task name -> entity types it annotates (a dict, or ``[[task, types], ...]``, the
            order-preserving form it is saved as); the label list follows from it (see
            ``aioner_scheme.AIOScheme``). Defaults to the six BioRED types.
        fc_size (`int`, *optional*):
            Width of the Dense+ReLU layer (default: the encoder's hidden size).
        dropout (`float`, *optional*, defaults to 0.1):
            Dropout after the Dense+ReLU layer.
        decoder (`str`, *optional*, defaults to `"crf"`):
            ``"crf"`` (the paper's model) or ``"softmax"`` (the fast variant).
        window_length (`int`, *optional*):
            Sub-words per input window, special tokens and task tags included.
        head (`str`, *optional*, defaults to `"dense"`):
            ``"dense"`` (the paper's: encoder -> Dense+ReLU) or ``"bilstm"`` (the
            transfer-learning framework's: encoder -> BiLSTM -> Dense+ReLU).
        lstm_size (`int`, *optional*, defaults to 256):
            Hidden units per direction of the BiLSTM head.
        output_layers (`str`, *optional*, defaults to `"shared"`):
            ``"shared"`` (AIO: one Dense+ReLU -> Linear -> CRF for every task) or ``"per_task"``
            (the MTL baseline: one per task, each over its own labels only).
        task_tags (`bool`, *optional*, defaults to `True`):
            Wrap each sentence in ``<task> ... </task>`` (AIO). The MTL baseline has none.
        context (`str`, *optional*, defaults to `"sentence"`):
            What a window holds besides the words it labels, in training and tagging alike
            (``aioner_scheme.document_windows``): ``"sentence"`` (one sentence, the paper's),
            ``"pack"`` (consecutive sentences of a document, all labelled) or ``"margin"`` (one
            sentence plus up to ``context_margin`` sub-words of its neighbours on each side, unlabelled).
        context_margin (`int`, *optional*, defaults to 0):
            Sub-words of context on each side with ``context="margin"``.
        trained_tasks (`dict`, *optional*):
            What training saw, per task: ``{"sentences": n, "mentions": {type: n}}``, counted from
            the rows used (``aioner_scheme.training_record``). A task absent from it has a tag but
            was never trained, and taggers refuse it. ``None``: not recorded (a checkpoint saved
            before the record existed, or a model not trained yet).
    """

    model_type = "aioner"
    if SubConfigSpec is not None:
        sub_configs_defaults = {"encoder_config": SubConfigSpec(AutoConfig, model_type="bert")}
    else:
        sub_configs = {"encoder_config": AutoConfig}

    def __init__(
        self,
        encoder_config: PretrainedConfig | dict | None = None,
        tasks: dict | None = None,
        fc_size: int | None = None,
        dropout: float = 0.1,
        decoder: str = "crf",
        window_length: int = DEFAULT_MAX_LENGTH,
        head: str = "dense",
        lstm_size: int = 256,
        output_layers: str = "shared",
        task_tags: bool = True,
        trained_tasks: dict | None = None,
        context: str = "sentence",
        context_margin: int = 0,
        **kwargs,
    ):
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, not {decoder!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, not {head!r}")
        if output_layers not in OUTPUT_LAYERS:
            raise ValueError(f"output_layers must be one of {OUTPUT_LAYERS}, not {output_layers!r}")
        self.encoder_config = encoder_config  # made a config by __setattr__
        scheme = AIOScheme(tasks)
        self.tasks = scheme.to_pairs()
        self.fc_size = fc_size
        self.dropout = dropout
        self.decoder = decoder
        self.window_length = window_length
        self.head = head
        self.lstm_size = lstm_size
        self.output_layers = output_layers
        self.task_tags = task_tags
        self.trained_tasks = trained_tasks
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, not {context!r}")
        if context == "margin":
            if context_margin < 1:
                raise ValueError("context='margin' needs context_margin >= 1 (sub-words of context per side)")
            labelled_budget(window_length, context, context_margin)  # refuses margins that fill the window
        self.context = context
        self.context_margin = context_margin if context == "margin" else 0
        id2label = kwargs.pop("id2label", None)
        kwargs.pop("label2id", None)
        kwargs.pop("num_labels", None)
        if id2label is not None:
            # A saved config carries both; they must agree, or the head is not this scheme's.
            scheme.check_labels([id2label[k] for k in sorted(id2label, key=int)])
        super().__init__(
            id2label=dict(enumerate(scheme.labels)),
            label2id=dict(scheme.label2id),
            **kwargs,
        )

    def __setattr__(self, key, value):
        # Code written when the encoder config was a dict (``config.encoder_config = {...}``) still works.
        if key == "encoder_config":
            value = _as_encoder_config(value)
        super().__setattr__(key, value)

    @property
    def initializer_range(self) -> float:
        """The std of the output layers' initial weights: the encoder's own (0.02 if it has none)."""
        return getattr(self.encoder_config, "initializer_range", 0.02)

    @initializer_range.setter
    def initializer_range(self, value: float) -> None:
        self.encoder_config.initializer_range = value

    @property
    def scheme(self) -> AIOScheme:
        return AIOScheme(self.tasks)

    def build_encoder_config(self) -> PretrainedConfig:
        """A copy of ``encoder_config`` (kept for code written when it was a dict)."""
        return copy.deepcopy(self.encoder_config)

    def with_tasks(self, tasks) -> AIONERConfig:
        """A copy of this config over another label set.

        Every other field is copied as it is (fields added later included), except ``trained_tasks``:
        it described the training of the old output layer, so it is reset to ``None`` (not recorded).
        """
        new = copy.deepcopy(self)
        scheme = AIOScheme(tasks)
        new.tasks = scheme.to_pairs()
        new.id2label, new.label2id = dict(enumerate(scheme.labels)), dict(scheme.label2id)
        new.trained_tasks = None
        return new


def _build_encoder(encoder_config: PretrainedConfig, name_or_path: str | None = None) -> nn.Module:
    """An encoder without its pooler: the pooler is unused here and DDP rejects unused parameters."""
    try:
        if name_or_path is None:
            return AutoModel.from_config(encoder_config, add_pooling_layer=False)
        return AutoModel.from_pretrained(name_or_path, add_pooling_layer=False)
    except TypeError:  # encoders without a pooler do not take the argument
        if name_or_path is None:
            return AutoModel.from_config(encoder_config)
        return AutoModel.from_pretrained(name_or_path)


def pack(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the positions selected by ``mask`` to the front of each row.

    ``values`` is ``[B, L, ...]``, ``mask`` ``[B, L]``; returns ``[B, W, ...]`` with
    ``W`` the largest count of selected positions and the packed (prefix) mask.
    """
    mask = mask.bool()
    counts = mask.sum(1)
    width = int(counts.max()) if counts.numel() else 0
    positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
    # Selected positions keep their order and sort before every unselected one.
    order = torch.where(mask, positions, positions + mask.size(1)).argsort(dim=1)[:, :width]
    index = order.reshape(order.shape + (1,) * (values.dim() - 2)).expand(order.shape + values.shape[2:])
    packed_mask = torch.arange(width, device=mask.device)[None, :] < counts[:, None]
    return values.gather(1, index), packed_mask


def viterbi(emissions, mask, start, end, transitions) -> torch.Tensor:
    """Best tag path for each row, vectorized over the batch and the tags.

    ``emissions`` ``[B, W, C]`` with a prefix ``mask`` ``[B, W]`` (every row at
    least one position). Returns ``[B, W]`` tag ids (positions past a row's length
    are meaningless).
    """
    batch, width, _ = emissions.shape
    lengths = mask.sum(1)
    score = start + emissions[:, 0]
    history = []
    for t in range(1, width):
        best, idx = (score[:, :, None] + transitions[None]).max(1)
        history.append(idx)
        score = torch.where(mask[:, t, None], best + emissions[:, t], score)
    cur = (score + end).argmax(1)
    path = torch.empty(batch, width, dtype=torch.long, device=emissions.device)
    for t in range(width - 1, -1, -1):
        path[:, t] = cur
        if t > 0:
            prev = history[t - 1].gather(1, cur[:, None]).squeeze(1)
            cur = torch.where(t < lengths, prev, cur)
    return path


def crf_nll(emissions, tags, mask, start, end, transitions) -> torch.Tensor:
    """Summed negative log-likelihood of the ``tags`` paths: pytorch-crf's ``-CRF.forward`` in fewer operations.

    ``emissions`` ``[B, W, C]``, ``tags`` and the prefix ``mask`` ``[B, W]`` (every row at least one
    position). The gold path's score is gathered for all positions at once, and the log-partition's
    recursion does three operations a position instead of pytorch-crf's eight, for the same values. On
    a GPU each operation is a kernel launch that the CPU pays for, and the loss was about half of a
    training step's operations with pytorch-crf.
    """
    lengths = mask.sum(1)
    maskf = mask.to(emissions.dtype)
    gold = emissions.gather(2, tags[..., None]).squeeze(2)  # [B, W]
    score = start[tags[:, 0]] + (gold * maskf).sum(1) + (transitions[tags[:, :-1], tags[:, 1:]] * maskf[:, 1:]).sum(1)
    score = score + end[tags.gather(1, (lengths - 1)[:, None]).squeeze(1)]
    alpha = start + emissions[:, 0]
    steps, keep = emissions.unbind(1), mask[..., None].unbind(1)
    for t in range(1, emissions.size(1)):
        alpha = torch.where(keep[t], torch.logsumexp(alpha[:, :, None] + transitions, 1) + steps[t], alpha)
    return (torch.logsumexp(alpha + end, 1) - score).sum()


def crf_marginals(emissions, mask, start, end, transitions) -> torch.Tensor:
    """Posterior probability of each tag at each position (forward-backward), ``[B, W, C]``.

    Scaled forward-backward in probability space, in float64: each step is one small matmul
    and every alpha/beta is renormalized, so no log-sum-exp is needed (4x faster than the
    log-space recursion at tagging sizes, and closer to exact: ~1e-7 against 1e-3 for fp32
    log space over 200 words). The scale factors cancel because each position's marginal is
    normalized on its own. If anything underflows to an all-zero row (transition scores
    spanning > 700 nats), the log-space recursion answers instead.
    """
    em = emissions.double()
    probs = torch.exp(em - em.max(-1, keepdim=True).values)  # [B, W, C], 1 at each position's best tag
    trans = torch.exp((transitions - transitions.max()).double())
    width = em.size(1)
    alpha = torch.exp((start - start.max()).double())[None] * probs[:, 0]
    alpha = alpha / alpha.sum(1, keepdim=True)
    alphas = [alpha]
    for t in range(1, width):
        nxt = (alpha @ trans) * probs[:, t]
        alpha = torch.where(mask[:, t, None], nxt / nxt.sum(1, keepdim=True), alpha)
        alphas.append(alpha)
    # beta at a row's last position is the end score; earlier ones look one step ahead.
    lengths = mask.sum(1)
    end_w = torch.exp((end - end.max()).double()).expand_as(alpha)
    beta = end_w
    betas = [None] * width
    for t in range(width - 1, -1, -1):
        if t < width - 1:
            ahead = (probs[:, t + 1] * beta) @ trans.T
            ahead = ahead / ahead.sum(1, keepdim=True)
            beta = torch.where((t == lengths - 1)[:, None], end_w, torch.where(mask[:, t + 1, None], ahead, beta))
        betas[t] = beta
    joint = torch.stack(alphas, 1) * torch.stack(betas, 1)
    marginals = joint / joint.sum(-1, keepdim=True)
    if not bool(torch.isfinite(marginals).all()):
        return _crf_marginals_log(emissions, mask, start, end, transitions)
    return marginals.to(torch.promote_types(emissions.dtype, transitions.dtype))


def _crf_marginals_log(emissions, mask, start, end, transitions) -> torch.Tensor:
    """``crf_marginals`` in log space: slower, never underflows."""
    width = emissions.size(1)
    alphas = [start + emissions[:, 0]]
    for t in range(1, width):
        nxt = torch.logsumexp(alphas[-1][:, :, None] + transitions[None], 1) + emissions[:, t]
        alphas.append(torch.where(mask[:, t, None], nxt, alphas[-1]))
    lengths = mask.sum(1)
    beta = end.expand_as(alphas[0]).clone()
    betas = [None] * width
    for t in range(width - 1, -1, -1):
        is_last = (t == lengths - 1)[:, None]
        if t < width - 1:
            ahead = torch.logsumexp(transitions[None] + (emissions[:, t + 1] + beta)[:, None, :], 2)
            beta = torch.where(is_last, end.expand_as(beta), torch.where(mask[:, t + 1, None], ahead, beta))
        betas[t] = beta
    alpha, beta = torch.stack(alphas, 1), torch.stack(betas, 1)
    log_z = torch.logsumexp(alphas[-1] + end, 1)
    return torch.exp(alpha + beta - log_z[:, None, None])


class AIONERCRF(CRF):
    """pytorch-crf's ``CRF`` over packed words, with the batched decoding AIONER tags with.

    Its parameters are pytorch-crf's own (``start_transitions``, ``end_transitions``,
    ``transitions``), so state-dict keys and saved checkpoints are unchanged. Every method takes
    emissions ``[B, W, num_tags]`` over words and their prefix ``mask`` ``[B, W]`` (see ``pack``),
    every row at least one word. The methods read nothing but those three parameters, so they
    also serve a plain ``torchcrf.CRF`` (``AIONERCRF.best_paths(crf, ...)``), as
    ``aioner.ensemble`` builds one from its members' averages.
    """

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood of the ``tags`` paths."""
        # The log-sum-exp over a whole sentence stays in float32 under bf16 autocast.
        with torch.autocast(emissions.device.type, enabled=False):
            return crf_nll(
                emissions.float(), tags, mask, self.start_transitions, self.end_transitions, self.transitions
            )

    def best_paths(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Viterbi tag ids ``[B, W]`` (positions past a row's length are meaningless)."""
        return viterbi(emissions, mask, self.start_transitions, self.end_transitions, self.transitions)

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Posterior probability of each tag at each word, ``[B, W, num_tags]``."""
        return crf_marginals(emissions, mask, self.start_transitions, self.end_transitions, self.transitions)


class TaskHead(nn.Module):
    """One task's output layers in the MTL baseline: Dense+ReLU -> dropout -> Linear -> CRF over its labels."""

    def __init__(self, hidden: int, fc_size: int, num_labels: int, dropout: float, crf: bool):
        super().__init__()
        self.fc = nn.Linear(hidden, fc_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(fc_size, num_labels)
        self.crf = AIONERCRF(num_labels, batch_first=True) if crf else None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.relu(self.fc(hidden)))).float()


class AIONERPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the loading attributes shared by AIONER models."""

    config_class = AIONERConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _no_split_modules = []
    # forward() takes no loss kwargs: a Trainer must not pass it ``num_items_in_batch``.
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        """Initialise the output layers; the encoder, a ``PreTrainedModel``, initialises itself.

        Linear layers: normal(0, ``config.initializer_range``, the encoder's own) and zero bias. CRFs:
        pytorch-crf's uniform(-0.1, 0.1). LSTMs keep torch's default, as they always have here
        (transformers' default would re-draw them with Xavier).
        """
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, CRF):
            module.reset_parameters()
        elif not isinstance(module, nn.LSTM):
            super()._init_weights(module)  # embeddings, norms: only an encoder outside transformers has them


class AIONERForTokenClassification(AIONERPreTrainedModel):
    r"""AIONER tagger: an encoder with AIONER's output layers (Dense+ReLU -> Linear -> CRF or softmax).

    Args:
        config ([`AIONERConfig`]):
            The model configuration; the encoder is built from ``config.encoder_config``.
        encoder (`nn.Module`, *optional*):
            An encoder already built (e.g. pre-trained, see [`~AIONERForTokenClassification.from_encoder`]);
            its config becomes ``config.encoder_config``.

    Example:

    ```python
    >>> import torch
    >>> from transformers import BertConfig
    >>> from modeling_aioner import AIONERConfig, AIONERForTokenClassification

    >>> encoder = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
    ...                      intermediate_size=32)
    >>> config = AIONERConfig(encoder_config=encoder, tasks={"Gene": ["Gene"], "ALL": ["Gene", "Disease"]})
    >>> model = AIONERForTokenClassification(config).eval()
    >>> input_ids = torch.tensor([[2, 10, 11, 12, 3]])
    >>> word_mask = torch.tensor([[False, True, False, True, False]])  # the first sub-word of each word
    >>> logits = model(input_ids=input_ids).logits  # (1, 5, config.num_labels)
    >>> model.decode_emissions(logits, word_mask, config.scheme.allowed_label_ids("Gene"))  # one label id per word
    [[..., ...]]

    ```

    Saved checkpoints load with ``AutoModelForTokenClassification.from_pretrained(path, trust_remote_code=True)``.
    """

    def __init__(self, config: AIONERConfig, encoder: nn.Module | None = None):
        super().__init__(config)
        self.encoder = encoder if encoder is not None else _build_encoder(config.encoder_config)
        # One config object for the encoder and the sub-config: what changes the encoder's
        # (resize_token_embeddings) is what gets saved.
        config.encoder_config = self.encoder.config
        hidden = self.encoder.config.hidden_size
        fc_size = config.fc_size or hidden
        self.lstm = (
            nn.LSTM(hidden, config.lstm_size, batch_first=True, bidirectional=True)
            if getattr(config, "head", "dense") == "bilstm"
            else None
        )
        if self.lstm is not None:
            hidden = 2 * config.lstm_size
        self._build_output_layers(hidden, fc_size)
        self.post_init()

    def _build_output_layers(self, hidden: int, fc_size: int) -> None:
        config = self.config
        crf = config.decoder == "crf"
        self.task_heads = None
        if getattr(config, "output_layers", "shared") == "per_task":
            scheme = self._scheme = config.scheme
            # Each head's labels, as ids of the global label set (a B-/I- label is shared by name only).
            self._task_labels = [scheme.allowed_label_ids(t) for t in scheme.tasks]
            self.task_heads = nn.ModuleList(
                TaskHead(hidden, fc_size, len(ids), config.dropout, crf) for ids in self._task_labels
            )
            self.fc = self.dropout = self.classifier = self.crf = None
            return
        self.fc = nn.Linear(hidden, fc_size)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(fc_size, config.num_labels)
        self.crf = AIONERCRF(config.num_labels, batch_first=True) if crf else None

    def task_index(self, task: str) -> int:
        return self._scheme.task_index(task)

    # ----- construction -----
    @classmethod
    def from_encoder(cls, encoder_name_or_path: str, vocab_size: int | None = None, **config_kwargs):
        """A new tagger on a pre-trained encoder.

        Args:
            encoder_name_or_path (`str`):
                A Hub id or a local folder of the encoder.
            vocab_size (`int`, *optional*):
                The tokenizer's size once the task tags are added; the embeddings are resized to it
                (otherwise a reloaded checkpoint would build a 30,522-row embedding and fail to load).
            config_kwargs:
                The other [`AIONERConfig`] arguments.
        """
        encoder = _build_encoder(None, encoder_name_or_path)
        if vocab_size is not None and vocab_size != encoder.get_input_embeddings().num_embeddings:
            encoder.resize_token_embeddings(vocab_size)
            encoder.config.vocab_size = vocab_size
        config = AIONERConfig(encoder_config=encoder.config.to_dict(), **config_kwargs)
        return cls(config, encoder=encoder)

    def reset_output_layers(self, tasks, keep_known: bool = False) -> None:
        """A new label set (new entity types): encoder and Dense+ReLU kept, output layer and CRF new.

        Args:
            tasks (`dict` or `list`):
                The new tasks, as ``AIONERConfig(tasks=...)`` takes them. The rest of the config is
                copied (see [`AIONERConfig.with_tasks`]).
            keep_known (`bool`, *optional*, defaults to `False`):
                Labels the old head already had keep their output weights and CRF transitions
                (GERBERA's stage 2 keeps what stage 1 learnt of the target labels).
        """
        if self.task_heads is not None:
            raise NotImplementedError(
                "reset_output_layers: a model with one output layer per task (MTL) "
                "is trained from its encoder with the mtl recipe, not re-headed"
            )
        old_config, old_classifier, old_crf = self.config, self.classifier, self.crf
        self.config = old_config.with_tasks(tasks)
        self.config.encoder_config = self.encoder.config  # still the encoder's own object
        n = self.config.num_labels
        device = self.fc.weight.device
        self.classifier = nn.Linear(self.fc.out_features, n).to(device)
        self._init_weights(self.classifier)
        self.crf = AIONERCRF(n, batch_first=True).to(device) if self.config.decoder == "crf" else None
        if not keep_known:
            return
        pairs = [
            (i, old_config.label2id[label]) for i, label in self.config.id2label.items() if label in old_config.label2id
        ]
        new, old = (torch.tensor(x, device=device) for x in zip(*pairs)) if pairs else (None, None)
        if new is None:
            return
        with torch.no_grad():
            self.classifier.weight[new] = old_classifier.weight[old]
            self.classifier.bias[new] = old_classifier.bias[old]
            if self.crf is not None and old_crf is not None:
                self.crf.start_transitions[new] = old_crf.start_transitions[old]
                self.crf.end_transitions[new] = old_crf.end_transitions[old]
                self.crf.transitions[new[:, None], new[None, :]] = old_crf.transitions[old[:, None], old[None, :]]

    # ----- forward -----
    def emissions(self, input_ids, attention_mask=None, token_type_ids=None, task_ids=None, **encoder_kwargs):
        """Label scores ``[B, L, num_labels]`` (float32) and the encoder's output.

        Args:
            input_ids, attention_mask, token_type_ids:
                As in [`~AIONERForTokenClassification.forward`].
            task_ids (`torch.LongTensor` of shape `(batch_size,)` or `int`, *optional*):
                Per-task output layers only: each row's task index. Each row then scores its own
                task's labels; every other label gets ``_FORBIDDEN``.
            encoder_kwargs:
                Passed to the encoder (e.g. ``output_hidden_states``).
        """
        if token_type_ids is not None:  # encoders such as MPNet take no token types
            encoder_kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **encoder_kwargs)
        hidden = out.last_hidden_state
        if self.lstm is not None:
            hidden = self._bilstm(hidden, attention_mask)
        if self.task_heads is not None:
            return self._per_task_emissions(hidden, task_ids), out
        hidden = torch.relu(self.fc(hidden))
        # The CRF's sums and exponentials want float32 even under bf16 autocast.
        return self.classifier(self.dropout(hidden)).float(), out

    def _per_task_emissions(self, hidden: torch.Tensor, task_ids) -> torch.Tensor:
        if task_ids is None:
            raise ValueError("this model has one output layer per task (MTL): pass task_ids, the task of each row")
        batch, width = hidden.shape[:2]
        task_ids = torch.as_tensor(task_ids, device=hidden.device).reshape(-1).expand(batch)
        logits = hidden.new_full((batch, width, self.config.num_labels), _FORBIDDEN, dtype=torch.float32)
        for t in task_ids.unique().tolist():
            rows = (task_ids == t).nonzero().squeeze(1)
            cols = torch.tensor(self._task_labels[t], device=hidden.device)
            local = self.task_heads[t](hidden[rows])  # [rows, L, labels of task t]
            block = logits.new_full((len(rows), width, self.config.num_labels), _FORBIDDEN).index_copy(2, cols, local)
            logits = logits.index_copy(0, rows, block)  # differentiable in ``local``: only its head learns
        return logits

    def _bilstm(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The BiLSTM over each row's real tokens only: padding must not feed the backward direction."""
        rnn = nn.utils.rnn
        if attention_mask is None:
            lengths = torch.full((hidden.size(0),), hidden.size(1), dtype=torch.long)
        else:
            lengths = attention_mask.sum(1).clamp(min=1).cpu()
        # LSTMs have no bf16 CPU kernels under autocast: run this part in float32.
        with torch.autocast(hidden.device.type, enabled=False):
            packed = rnn.pack_padded_sequence(hidden.float(), lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = rnn.pad_packed_sequence(out, batch_first=True, total_length=hidden.size(1))
        return out

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        word_mask: torch.Tensor | None = None,
        task_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> TokenClassifierOutput | tuple[torch.Tensor, ...]:
        r"""Label scores of every sub-word and, given ``labels``, the loss.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Sub-word ids, task tags included (AIO models).
            attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for real tokens, 0 for padding.
            token_type_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Segment ids, for encoders that take them.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Label id of each word at its first sub-word, -100 elsewhere. Given, the loss is
                returned: the CRF's negative log-likelihood over the words, averaged over the rows that
                have any (``decoder="crf"``), or the cross-entropy of the words (``"softmax"``).
            word_mask (`torch.BoolTensor` of shape `(batch_size, sequence_length)`, *optional*):
                The first sub-word of each word: the positions the loss scores (with ``labels``).
                Defaults to ``labels != -100``.
            task_ids (`torch.LongTensor` of shape `(batch_size,)` or `int`, *optional*):
                Each row's task index (``config.scheme.task_index``). Required with per-task output
                layers (MTL), which score and decode each row with its task's layer; AIO models read
                the task from its tags and ignore it.
            output_hidden_states (`bool`, *optional*):
                Return the encoder's hidden states.
            output_attentions (`bool`, *optional*):
                Return the encoder's attentions.
            return_dict (`bool`, *optional*):
                Return a [`~modeling_outputs.TokenClassifierOutput`] (the default, ``config.return_dict``)
                or, when `False`, a tuple of its fields that are not `None`: ``(loss, logits, ...)``.

        Returns:
            [`~modeling_outputs.TokenClassifierOutput`] or `tuple`: ``logits`` of shape
            `(batch_size, sequence_length, config.num_labels)` in float32 (labels a row's task may not
            output, per-task layers only, score ``_FORBIDDEN``), ``loss`` when ``labels`` are given.

        Raises:
            TypeError: for any other keyword argument (an argument that would be ignored is a mistake).
        """
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}.forward() got unexpected keyword arguments {sorted(kwargs)}; "
                "it takes input_ids, attention_mask, token_type_ids, labels, word_mask, task_ids, "
                "output_hidden_states, output_attentions and return_dict"
            )
        logits, out = self.emissions(
            input_ids,
            attention_mask,
            token_type_ids,
            task_ids=task_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        loss = None
        if labels is not None:
            if word_mask is None:
                word_mask = labels != -100
            loss = self.loss(logits, labels, word_mask, task_ids)
        output = TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, word_mask: torch.Tensor, task_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The training loss of ``forward`` from its ``logits`` (same arguments)."""
        word_mask = word_mask.bool()
        if self.config.decoder == "softmax":  # forbidden labels (per-task layers) get probability 0
            return nn.functional.cross_entropy(logits[word_mask], labels[word_mask])
        keep = word_mask.any(1)  # a window with no word contributes nothing
        if self.task_heads is None:
            return self._crf_nll(self.crf, logits[keep], labels[keep], word_mask[keep]) / keep.sum()
        task_ids = torch.as_tensor(task_ids, device=logits.device).reshape(-1).expand(logits.size(0))
        total = logits.new_zeros(())
        for t in task_ids[keep].unique().tolist():
            rows = keep & (task_ids == t)
            cols = torch.tensor(self._task_labels[t], device=logits.device)
            local = torch.zeros(self.config.num_labels, dtype=torch.long, device=logits.device)
            local[cols] = torch.arange(len(cols), device=logits.device)  # global label id -> this head's
            total = total + self._crf_nll(
                self.task_heads[t].crf, logits[rows][..., cols], local[labels[rows].clamp(min=0)], word_mask[rows]
            )
        return total / keep.sum()

    @staticmethod
    def _crf_nll(crf: AIONERCRF, logits: torch.Tensor, labels: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood of the rows' word label paths under ``crf``."""
        em, packed_mask = pack(logits, word_mask)
        tags, _ = pack(labels, word_mask)
        return crf.nll(em, tags.masked_fill(~packed_mask, 0), packed_mask)

    @torch.no_grad()
    def decode_emissions(
        self,
        logits: torch.Tensor,
        word_mask: torch.Tensor,
        allowed_label_ids: Sequence[int] | None = None,
        with_scores: bool = False,
        task: str | None = None,
    ):
        """Best label id per word for each row (list of lists), optionally with per-word confidences.

        Args:
            logits (`torch.Tensor` of shape `(batch_size, sequence_length, config.num_labels)`):
                ``forward``'s (or ``emissions``') label scores.
            word_mask (`torch.BoolTensor` of shape `(batch_size, sequence_length)`):
                The first sub-word of each word: one label per marked position.
            allowed_label_ids (`Sequence[int]`, *optional*):
                The labels a row may take (a task's, ``config.scheme.allowed_label_ids(task)``).
            with_scores (`bool`, *optional*, defaults to `False`):
                Also return each word's confidence: the CRF marginal (or softmax probability) of its label.
            task (`str`, *optional*):
                Required with per-task output layers: its CRF decodes (one task per call).

        Returns:
            `list[list[int]]`, or ``(paths, scores)`` with ``with_scores``.
        """
        word_mask = word_mask.bool()
        logits = logits.float()
        crf, cols = self.crf, None
        # getattr: aioner.ensemble borrows this method for an object without per-task heads.
        if getattr(self, "task_heads", None) is not None and self.config.decoder == "crf":
            if task is None:
                raise ValueError("this model has one output layer per task (MTL): decode_emissions needs task=")
            t = self.task_index(task)
            crf, cols = self.task_heads[t].crf, self._task_labels[t]
            logits, allowed_label_ids = logits[..., cols], None  # this head's labels only
        if allowed_label_ids is not None:
            forbid = torch.full((logits.size(-1),), _FORBIDDEN, device=logits.device)
            forbid[list(allowed_label_ids)] = 0.0
            logits = logits + forbid
        counts = word_mask.sum(1).tolist()
        em, packed_mask = pack(logits, word_mask)
        rows = [i for i, c in enumerate(counts) if c > 0]
        paths = [[] for _ in counts]
        scores = [[] for _ in counts]
        if not rows:
            return (paths, scores) if with_scores else paths
        em, packed_mask = em[rows], packed_mask[rows]
        if crf is None:
            probs = em.softmax(-1)
            best = probs.argmax(-1)
        else:  # called through the class: the ensemble's CRF is a plain torchcrf.CRF
            best = AIONERCRF.best_paths(crf, em, packed_mask)
            probs = AIONERCRF.marginals(crf, em, packed_mask) if with_scores else None
        best_list = best.tolist() if cols is None else torch.tensor(cols)[best.cpu()].tolist()
        conf = probs.gather(2, best[..., None]).squeeze(2).tolist() if with_scores else None
        for j, i in enumerate(rows):
            paths[i] = best_list[j][: counts[i]]
            if with_scores:
                scores[i] = conf[j][: counts[i]]
        return (paths, scores) if with_scores else paths

    @torch.no_grad()
    def decode(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        word_mask=None,
        allowed_label_ids=None,
        with_scores=False,
        task=None,
    ):
        """Viterbi (or argmax) label ids of the words marked by ``word_mask`` (``task``: per-task layers)."""
        task_ids = None if task is None or self.task_heads is None else self.task_index(task)
        logits, _ = self.emissions(input_ids, attention_mask, token_type_ids, task_ids=task_ids)
        if word_mask is None:
            raise ValueError("decode needs word_mask: the first sub-word of each word")
        return self.decode_emissions(logits, word_mask, allowed_label_ids, with_scores, task)


AIONERConfig.register_for_auto_class()
AIONERForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
