"""Precision and thread choices: parsing, CPU capabilities, the probe's verdict, warnings."""

from __future__ import annotations

import pytest
import torch

from reclora_pipeline.compute import (
    CpuInfo,
    choose_precision,
    choose_threads,
    cpu_bf16_is_fast,
    model_dtype,
    parse_bf16,
    read_cpu_info,
    use_precision,
    use_threads,
)
from reclora_pipeline.errors import SettingError

SAPPHIRE_RAPIDS = (
    "model name\t: Intel Xeon Platinum 8480\nflags\t\t: avx512f avx512_bf16 amx_bf16 amx_tile\n"
)
COOPER_LAKE = "model name\t: Intel Xeon 8380H\nflags\t\t: avx512f avx512_bf16\n"
SKYLAKE = "model name\t: Intel Xeon 8175M\nflags\t\t: avx2 avx512f\n"


@pytest.mark.parametrize("value, parsed", [(True, True), (False, False), ("auto", "auto"),
                                           ("AUTO", "auto"), ("true", True), ("false", False)])  # fmt: skip
def test_bf16_settings_parse(value, parsed):
    assert parse_bf16(value, "x.bf16") == parsed


@pytest.mark.parametrize("value", ["yes", 1, None, "fp16"])
def test_a_bad_bf16_setting_names_its_key_and_the_choices(value):
    with pytest.raises(SettingError, match=r'evaluation\.bf16.*true, false or "auto"'):
        parse_bf16(value, "evaluation.bf16")


def test_cpu_flags_and_the_onednn_isa_cap():
    assert read_cpu_info(SAPPHIRE_RAPIDS, {}) == CpuInfo(
        "Intel Xeon Platinum 8480", True, True, None
    )
    # ONEDNN_MAX_CPU_ISA makes an AMX machine behave as one without AMX, or without bf16.
    capped = read_cpu_info(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"})
    assert (capped.amx, capped.avx512_bf16, capped.isa_cap) == (False, True, "AVX512_CORE_BF16")
    no_bf16 = read_cpu_info(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": "avx2"})
    assert (no_bf16.amx, no_bf16.avx512_bf16) == (False, False)
    assert read_cpu_info(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": "ALL"}).amx
    assert read_cpu_info(COOPER_LAKE, {}).avx512_bf16 and not read_cpu_info(COOPER_LAKE, {}).amx
    assert not read_cpu_info(SKYLAKE, {}).avx512_bf16
    assert read_cpu_info("", {}).model == "unknown CPU"


def _never() -> float:
    raise AssertionError("the probe must not run when the flags decide")


def test_flags_decide_without_a_probe_and_the_probe_decides_the_rest():
    assert cpu_bf16_is_fast(read_cpu_info(SAPPHIRE_RAPIDS, {}), _never)[0]
    assert not cpu_bf16_is_fast(read_cpu_info(SKYLAKE, {}), _never)[0]
    cooper = read_cpu_info(COOPER_LAKE, {})
    fast, why = cpu_bf16_is_fast(cooper, lambda: 1.7)
    assert fast and "1.70x" in why
    assert not cpu_bf16_is_fast(cooper, lambda: 0.7)[0]
    assert not cpu_bf16_is_fast(cooper, lambda: 1.05)[0]  # a near tie keeps exact fp32


def test_auto_follows_the_hardware_and_forced_values_are_kept():
    amx, plain = read_cpu_info(SAPPHIRE_RAPIDS, {}), read_cpu_info(SKYLAKE, {})
    assert choose_precision("auto", "cpu", "k", amx).bf16
    auto = choose_precision("auto", "cpu", "k", plain)
    assert not auto.bf16 and "fp32" in auto.reason and auto.warning is None
    assert not choose_precision(False, "cpu", "k", amx).bf16
    assert choose_precision(True, "cpu", "k", amx).warning is None


def test_forcing_bf16_where_it_is_slow_warns_with_the_setting(caplog):
    plain = read_cpu_info(SKYLAKE, {})
    precision = choose_precision(True, "cpu", "finetune.training.bf16", plain)
    assert precision.bf16
    assert "finetune.training.bf16 = true" in precision.warning
    assert "no native bf16" in precision.warning and "auto" in precision.warning


def test_use_precision_logs_the_choice(caplog):
    with caplog.at_level("INFO", logger="reclora_pipeline.compute"):
        precision = use_precision(False, "cpu", "evaluation.bf16")
    assert not precision.bf16
    assert "precision: fp32 (forced by evaluation.bf16" in caplog.text


def test_threads_default_to_the_cores_and_are_capped_with_a_warning():
    assert choose_threads(None, "k", cores=4).count == 4
    assert choose_threads(1, "k", cores=4).count == 1
    capped = choose_threads(64, "evaluation.torch_threads", cores=2)
    assert capped.count == 2
    assert "evaluation.torch_threads = 64, but this process may use 2 cores" in capped.warning


def test_use_threads_sets_torch_and_warns(caplog):
    before = torch.get_num_threads()
    try:
        with caplog.at_level("INFO", logger="reclora_pipeline.compute"):
            threads = use_threads(10_000, "item_text.torch_threads")
        assert torch.get_num_threads() == threads.count < 10_000
        assert "item_text.torch_threads = 10000" in caplog.text
    finally:
        torch.set_num_threads(before)


def test_model_dtype_auto_is_bf16_only_on_a_gpu_that_computes_in_it():
    assert model_dtype("auto", True, "cpu", "k") is torch.float32
    assert model_dtype("auto", False, "cuda", "k") is torch.float32
    assert model_dtype("auto", True, "cuda", "k") is torch.bfloat16
    assert model_dtype("fp16", False, "cuda:1", "k") is torch.float16
    assert model_dtype("fp32", True, "cpu", "k") is torch.float32


@pytest.mark.parametrize("setting", ["bf16", "fp16"])
def test_half_weights_on_a_cpu_are_refused_with_the_setting(setting):
    with pytest.raises(SettingError, match="finetune.training.model_dtype.*bf16: true"):
        model_dtype(setting, True, "cpu", "finetune.training.model_dtype")
