"""The Wyoming protocol (Home Assistant's voice pipeline): `describe`, `synthesize` (whole and
streamed), `transcribe` with audio, translated into core's use cases. Wyoming has no
authentication: loopback by default, an allowlist of client networks beyond it, and every call made
as one configured principal so that limits, quotas and the audit apply."""
