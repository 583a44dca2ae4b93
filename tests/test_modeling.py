"""The model's transformers conventions: old checkpoints, the encoder sub-config, forward's arguments, the CRF module.

``fixtures/old_format/`` holds two tiny checkpoints (a 16-wide, 2-layer BERT with a 64-token
vocabulary; a shared CRF head and per-task CRF heads) saved by modeling_aioner.py as it was before
the encoder config became a sub-config (``encoder_config`` a plain dict in config.json), with
the outputs that code gave on fixed inputs (expected.json). The tests bring today's code files.
"""

import doctest
import json
import shutil

import pytest
import torch
from conftest import REPO, run_python, tiny_tagger

FIXTURES = REPO / "tests" / "fixtures" / "old_format"


def old_checkpoint(name, tmp_path):
    """A copy of an old-format fixture with the current code files beside it, and its expected outputs."""
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    for f in ("modeling_aioner.py", "aioner_scheme.py"):
        shutil.copy(REPO / f, folder / f)
    return folder, json.loads((folder / "expected.json").read_text())


def outputs(model, expected, task):
    ids, attention = torch.tensor(expected["input_ids"]), torch.tensor(expected["attention_mask"])
    word_mask = torch.tensor(expected["word_mask"])
    scheme = model.config.scheme
    per_task = model.task_heads is not None
    task_ids = torch.tensor(scheme.task_index(task)) if per_task else None
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention, task_ids=task_ids).logits
    paths, scores = model.decode_emissions(
        logits, word_mask, scheme.allowed_label_ids(task), with_scores=True, task=task if per_task else None
    )
    labels = torch.full(ids.shape, -100)
    for i, path in enumerate(paths):
        labels[i, word_mask[i]] = torch.tensor(path)
    with torch.no_grad():
        loss = model(input_ids=ids, attention_mask=attention, labels=labels, task_ids=task_ids).loss
    return logits, paths, scores, loss


@pytest.mark.parametrize("name", ["shared_crf", "per_task_crf"])
def test_old_format_checkpoint_loads_with_the_outputs_it_gave(name, tmp_path):
    from transformers import BertConfig

    from modeling_aioner import AIONERForTokenClassification

    folder, expected = old_checkpoint(name, tmp_path)
    model, info = AIONERForTokenClassification.from_pretrained(folder, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    assert list(model.state_dict()) == expected["state_dict_keys"]
    assert isinstance(model.config.encoder_config, BertConfig) and model.config.encoder_config.hidden_size == 16
    model.eval()
    for task, exp in expected["tasks"].items():
        logits, paths, scores, loss = outputs(model, expected, task)
        assert paths == exp["paths"], task
        # Tolerances only for other CPUs' float rounding: on the machine that saved them they are equal.
        torch.testing.assert_close(logits, torch.tensor(exp["logits"]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            torch.tensor(sum(scores, [])), torch.tensor(sum(exp["scores"], [])), rtol=1e-5, atol=1e-6
        )
        torch.testing.assert_close(loss, torch.tensor(exp["loss"]), rtol=1e-5, atol=1e-5)


def test_old_format_checkpoint_loads_in_a_fresh_process_through_automodel(tmp_path):
    folder, expected = old_checkpoint("shared_crf", tmp_path)
    code = f"""
import json, sys, torch
assert 'modeling_aioner' not in sys.modules
from transformers import AutoModelForTokenClassification, PretrainedConfig
m, info = AutoModelForTokenClassification.from_pretrained({str(folder)!r}, trust_remote_code=True,
                                                          output_loading_info=True)
assert not (info['missing_keys'] or info['unexpected_keys']), info
assert [c.__name__ for c in type(m).__mro__[:2]] == ['AIONERForTokenClassification', 'AIONERPreTrainedModel']
assert isinstance(m.config.encoder_config, PretrainedConfig) and m.encoder.config is m.config.encoder_config
exp = json.load(open({str(folder / "expected.json")!r}))
with torch.no_grad():
    logits = m.eval()(input_ids=torch.tensor(exp['input_ids']), attention_mask=torch.tensor(exp['attention_mask'])).logits
torch.testing.assert_close(logits, torch.tensor(exp['tasks']['ALL']['logits']), rtol=1e-5, atol=1e-5)
print('ok')
"""
    assert run_python(code).strip() == "ok"


def test_encoder_config_is_a_sub_config_shared_with_the_encoder(tmp_path):
    from transformers import BertConfig

    from modeling_aioner import AIONERConfig, AIONERForTokenClassification

    model, _ = tiny_tagger()
    config = model.config
    assert isinstance(config.encoder_config, BertConfig) and model.encoder.config is config.encoder_config
    assert config.initializer_range == config.encoder_config.initializer_range
    # One object: resizing the encoder is what gets saved (no dict to keep in sync).
    model.encoder.resize_token_embeddings(len(model.encoder.get_input_embeddings().weight) + 3)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["encoder_config"]
    assert saved["model_type"] == "bert" and saved["vocab_size"] == config.encoder_config.vocab_size
    reloaded = AIONERForTokenClassification.from_pretrained(tmp_path)

    def fields(c):  # loading sets dtype: float32
        return {k: v for k, v in c.to_dict().items() if k != "dtype"}

    assert fields(reloaded.config.encoder_config) == fields(config.encoder_config)
    # The dict form (how configs saved before held it) is still accepted, as argument and as assignment.
    as_dict = AIONERConfig(encoder_config=config.encoder_config.to_dict())
    assert as_dict.encoder_config.to_dict() == config.encoder_config.to_dict()
    as_dict.encoder_config = {"model_type": "bert", "hidden_size": 8}
    assert isinstance(as_dict.encoder_config, BertConfig) and as_dict.encoder_config.hidden_size == 8
    with pytest.raises(ValueError, match="no model_type"):
        AIONERConfig(encoder_config={"hidden_size": 8})


def test_unknown_forward_argument_is_a_type_error_naming_it():
    model, _ = tiny_tagger()
    ids = torch.randint(1000, 5000, (1, 6), generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match=r"\['inputs_embeds', 'wordmask'\]"):
        model(input_ids=ids, wordmask=torch.ones_like(ids), inputs_embeds=None)
    # What the trainer, the pipeline and transformers pass is accepted.
    labels = torch.full_like(ids, -100)
    labels[0, 1:4] = 2
    out = model(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        token_type_ids=torch.zeros_like(ids),
        labels=labels,
        word_mask=labels != -100,
        task_ids=torch.tensor([0]),
        output_hidden_states=True,
        output_attentions=False,
    )
    assert out.loss is not None and len(out.hidden_states) == 3


def test_return_dict_false_gives_a_tuple_as_bert_does():
    model, _ = tiny_tagger()
    ids = torch.randint(1000, 5000, (2, 6), generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, model.config.num_labels, (2, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        as_dict = model(input_ids=ids, labels=labels)
        as_tuple = model(input_ids=ids, labels=labels, return_dict=False)
        logits_only = model(input_ids=ids, return_dict=False)
        model.config.return_dict = False
        from_config = model(input_ids=ids)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    assert torch.equal(as_tuple[0], as_dict.loss) and torch.equal(as_tuple[1], as_dict.logits)
    assert isinstance(logits_only, tuple) and len(logits_only) == 1 and torch.equal(logits_only[0], as_dict.logits)
    assert isinstance(from_config, tuple)


@pytest.mark.parametrize("keep_known", [False, True])
def test_reset_output_layers_keeps_every_other_config_field(keep_known):
    from aioner_scheme import AIOScheme

    model, _ = tiny_tagger()
    config = model.config
    config.window_length, config.dropout, config.fc_size, config.lstm_size = 128, 0.3, 32, 8
    config.task_tags = False
    config.custom_pipelines = {"token-classification": {"impl": "x"}}
    config.trained_tasks = {"Gene": {"sentences": 3, "mentions": {"Gene": 2}}}
    config.a_field_added_later = "kept"
    before = config.to_dict()
    tasks = [["Gene", ["Gene"]], ["ALL", ["Gene", "Disease"]]]
    model.reset_output_layers(tasks, keep_known=keep_known)
    after = model.config.to_dict()
    label_fields = {"tasks", "id2label", "label2id", "trained_tasks"}
    assert {k: v for k, v in after.items() if k not in label_fields} == {
        k: v for k, v in before.items() if k not in label_fields
    }
    labels = AIOScheme(tasks).labels
    assert after["tasks"] == tasks and list(after["id2label"].values()) == labels
    assert after["trained_tasks"] is None  # it described the old output layer's training
    assert model.encoder.config is model.config.encoder_config
    assert model.classifier.out_features == len(labels) == model.crf.num_tags


def test_crf_module_keeps_pytorch_crf_keys_and_serves_a_plain_crf():
    from torchcrf import CRF

    from aioner.ensemble import AIONEREnsemble
    from modeling_aioner import AIONERCRF

    model, _ = tiny_tagger()
    assert isinstance(model.crf, AIONERCRF) and isinstance(model.crf, CRF)
    assert [k for k in model.state_dict() if k.startswith("crf.")] == [
        "crf.start_transitions",
        "crf.end_transitions",
        "crf.transitions",
    ]
    with torch.no_grad():
        model.crf.transitions.normal_(generator=torch.Generator().manual_seed(0))
    ids = torch.randint(1000, 5000, (2, 9), generator=torch.Generator().manual_seed(0))
    word_mask = torch.zeros(2, 9, dtype=torch.bool)
    word_mask[0, 1:8], word_mask[1, 2:5] = True, True
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    expected = model.decode_emissions(logits, word_mask, with_scores=True)
    # aioner.ensemble decodes with a plain torchcrf.CRF through the borrowed decode_emissions.
    ensemble = AIONEREnsemble([model])
    assert type(ensemble.crf) is CRF
    assert ensemble.decode_emissions(logits, word_mask, with_scores=True) == expected


def test_init_weights_reads_config_initializer_range():
    from transformers import BertConfig

    from modeling_aioner import AIONERConfig, AIONERForTokenClassification

    torch.manual_seed(0)
    encoder = BertConfig(
        vocab_size=64,
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        initializer_range=0.5,
    )
    model = AIONERForTokenClassification(AIONERConfig(encoder_config=encoder, fc_size=256))
    assert model.config.initializer_range == 0.5
    assert 0.45 < model.fc.weight.std().item() < 0.55 and not model.fc.bias.any()


def test_model_docstring_example_runs():
    from modeling_aioner import AIONERForTokenClassification

    tests = doctest.DocTestFinder().find(AIONERForTokenClassification, "AIONERForTokenClassification", globs={})
    example = [t for t in tests if t.name == "AIONERForTokenClassification"][0]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(example)
    assert runner.summarize(verbose=False).failed == 0
