"""The Starlette app over the core.

One guard on every route and socket; probes, downloads, OpenAI routes, speech streams, sockets.
"""
