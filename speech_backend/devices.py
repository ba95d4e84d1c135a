"""Resolve the configured device (`auto`, `cpu`, `cuda`) to what each engine library needs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from speech_backend.errors import BackendUnavailable

logger = logging.getLogger(__name__)

DeviceSetting = Literal["auto", "cpu", "cuda"]
DeviceKind = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class Device:
    """A resolved device: the kind and the onnxruntime providers to ask for, in order."""

    kind: DeviceKind
    onnx_providers: tuple[str, ...]

    @property
    def ct2_device(self) -> DeviceKind:
        """The CTranslate2 device string."""
        return self.kind


def onnx_cuda_available() -> bool:
    """True when onnxruntime offers the CUDA execution provider."""
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def ct2_cuda_available() -> bool:
    """True when CTranslate2 sees at least one CUDA device."""
    import ctranslate2

    try:
        return int(ctranslate2.get_cuda_device_count()) > 0
    except RuntimeError:
        return False


def resolve_device(setting: DeviceSetting) -> Device:
    """Pick CUDA when asked for or, with `auto`, when both engines can use it; else the CPU.

    Raises:
        BackendUnavailable: `cuda` was asked for explicitly and is not there.
    """
    cuda = onnx_cuda_available() and ct2_cuda_available() if setting != "cpu" else False
    if setting == "cuda" and not cuda:
        raise BackendUnavailable(
            "device=cuda was configured but no CUDA device is usable by onnxruntime and CTranslate2; "
            "install the 'gpu' extra on a machine with a GPU, or set SPEECH_TOOLS_ENGINES__DEVICE=cpu"
        )
    if cuda:
        return Device("cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"))
    return Device("cpu", ("CPUExecutionProvider",))
