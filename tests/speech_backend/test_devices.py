"""Device resolution."""

from __future__ import annotations

import pytest

from speech_backend import BackendUnavailable, resolve_device
from speech_backend.devices import ct2_cuda_available, onnx_cuda_available

HAS_CUDA = onnx_cuda_available() and ct2_cuda_available()


def test_cpu_resolves_to_the_cpu_provider():
    device = resolve_device("cpu")
    assert (device.kind, device.onnx_providers, device.ct2_device) == (
        "cpu",
        ("CPUExecutionProvider",),
        "cpu",
    )


def test_auto_picks_cuda_exactly_when_both_engines_can_use_it():
    assert resolve_device("auto").kind == ("cuda" if HAS_CUDA else "cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA, so cuda resolves")
def test_asking_for_cuda_without_a_gpu_is_backend_unavailable_naming_the_setting():
    with pytest.raises(BackendUnavailable, match="DEVICE=cpu"):
        resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device usable by onnxruntime and CTranslate2")
def test_cuda_puts_the_cuda_provider_first():
    device = resolve_device("cuda")
    assert device.onnx_providers[0] == "CUDAExecutionProvider" and device.ct2_device == "cuda"
