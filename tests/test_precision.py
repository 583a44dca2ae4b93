"""Tagging precision: fp32 by default; bf16 on request, or "auto" (bf16 on CPUs with native bf16) (issue 15)."""

import pytest
import torch
from conftest import tiny_tagger

import pipeline_aioner


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu sse avx512f avx512_bf16 amx_tile", torch.bfloat16),
        ("fpu sse amx_bf16", torch.bfloat16),
        ("fpu sse avx2 avx512f", None),
    ],
)
def test_default_follows_the_cpu_flags(flags, expected, monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: real_open(cpuinfo if f == "/proc/cpuinfo" else f, *a, **k))
    assert pipeline_aioner.default_autocast_dtype(torch.device("cpu")) is expected
    assert pipeline_aioner.default_autocast_dtype(torch.device("meta")) is None  # not a CPU: fp32 unless asked


@pytest.mark.parametrize("gpu, gpu_bf16, cpu_bf16", [(True, True, False), (True, False, True), (False, True, False)])
def test_native_bf16_asks_the_device_that_trains(gpu, gpu_bf16, cpu_bf16, monkeypatch):
    """One owner for training and tagging: with a GPU its own bf16 support decides, not the host CPU's flags."""
    monkeypatch.setattr(pipeline_aioner, "native_bf16_cpu", lambda: cpu_bf16)
    monkeypatch.setattr("torch.cuda.is_available", lambda: gpu)
    monkeypatch.setattr("torch.cuda.is_bf16_supported", lambda *a, **k: gpu_bf16)
    assert pipeline_aioner.native_bf16() is (gpu_bf16 if gpu else cpu_bf16)
    assert pipeline_aioner.native_bf16("cpu") is cpu_bf16
    assert pipeline_aioner.native_bf16(torch.device("cuda")) is gpu_bf16
    assert pipeline_aioner.native_bf16("meta") is False


def test_tagger_and_pipeline_resolve_precision(monkeypatch):
    monkeypatch.setattr(pipeline_aioner, "native_bf16_cpu", lambda: True)
    model, tokenizer = tiny_tagger()
    assert pipeline_aioner.AIONERTagger(model, tokenizer).autocast_dtype is None  # fp32 is the default
    assert pipeline_aioner.AIONERTagger(model, tokenizer, autocast_dtype="auto").autocast_dtype is torch.bfloat16
    monkeypatch.setattr(pipeline_aioner, "native_bf16_cpu", lambda: False)
    assert pipeline_aioner.AIONERTagger(model, tokenizer, autocast_dtype="auto").autocast_dtype is None
    assert (
        pipeline_aioner.AIONERTokenClassificationPipeline(model=model, tokenizer=tokenizer).tagger.autocast_dtype
        is None
    )
    pipe = pipeline_aioner.AIONERTokenClassificationPipeline(model=model, tokenizer=tokenizer, precision="bf16")
    assert pipe.tagger.autocast_dtype is torch.bfloat16
    assert pipe("BRCA1 is a gene.") == pipe.tagger.tag(["BRCA1 is a gene."])[0]
    with pytest.raises(ValueError, match="precision must be"):
        pipeline_aioner.AIONERTokenClassificationPipeline(model=model, tokenizer=tokenizer, precision="fp16")


def test_cli_precision_options(capsys):
    from aioner.tagging import main

    with pytest.raises(SystemExit):
        main(["x.txt", "--model", "m", "--output_dir", "o", "--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_aioner_tag_bounds_the_onednn_kernel_cache_unless_set():
    import os
    import subprocess
    import sys

    code = "import os, aioner.tagging; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "16"
    env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = "256"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "256"
