"""The Riva speech API over gRPC (`nvidia.riva.tts.RivaSpeechSynthesis`,
`nvidia.riva.asr.RivaSpeechRecognition`), served with the stubs nvidia-riva-client ships and
translated into core's use cases, beside the standard health service and server reflection."""
