"""Operator actions on a running engine pool, run in their own process (the test process never
joins Ray): `stats` of the synthesis deployment, `recognition-stats` of the recognition one, and
`kill <role>` of every replica of a role.

    python -m tests.cluster.pool_admin 127.0.0.1:6379 stats
    python -m tests.cluster.pool_admin 127.0.0.1:6379 kill synthesis
"""

from __future__ import annotations

import json
import logging
import sys

import ray
from ray import serve
from ray.util.state import list_actors


def main(address: str, command: str, *rest: str) -> None:
    ray.init(address=address, namespace="serve", log_to_driver=False, logging_level=logging.ERROR)
    if command in ("stats", "recognition-stats"):
        app = "speech-synthesis" if command == "stats" else "speech-recognition"
        stats = serve.get_app_handle(app).stats.remote().result(timeout_s=60)
        print(json.dumps(stats))
    elif command == "kill":
        prefix = f"ServeReplica:speech-{rest[0]}:"
        alive = [a for a in list_actors(filters=[("state", "=", "ALIVE")]) if a.class_name.startswith(prefix)]
        for actor in alive:
            ray.kill(ray.get_actor(str(actor.name), namespace="serve"), no_restart=True)
        print(json.dumps({"killed": len(alive)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
