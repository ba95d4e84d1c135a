"""The engines past one machine: Ray Serve deployments that hold `speech_backend` engines
(`deployments`), and `Synthesizer` / `Recognizer` implementations that call them (`remote_engines`).
Imported only in cluster mode; the embedded server never loads Ray."""
