"""The use cases every surface goes through.

speak, speech streams, transcribe, live transcription sessions and voices; scheduling, sources,
outputs, errors and the runtime. No transport library (MCP, Starlette, uvicorn) is imported here.
"""
