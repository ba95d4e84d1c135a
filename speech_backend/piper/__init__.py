"""Piper (VITS on onnxruntime): the synthesizer and the onnxruntime sessions of its voices. These
are the only modules that import `piper` (GPL-3.0-or-later)."""
