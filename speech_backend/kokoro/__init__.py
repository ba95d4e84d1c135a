"""Kokoro-82M (int8 ONNX): the synthesizer, and its files from registry packages, each checked."""
