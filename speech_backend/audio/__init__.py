"""Audio in and out: bounded decoding (PyAV), encoding with the synthetic-speech marker, progressive
encoding for streams, and resampling (soxr)."""
