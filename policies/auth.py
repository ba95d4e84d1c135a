"""Bearer tokens to principals: tokens are stored as SHA-256 hashes and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

from policies.config import PolicyConfig, Principal
from policies.errors import Unauthorized


def token_hash(token: str) -> str:
    """The SHA-256 hex digest a policy file stores for `token`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authenticate(config: PolicyConfig, token: str | None) -> Principal:
    """The principal that holds `token`.

    Every stored hash is compared (no early exit), each in constant time.

    Raises:
        Unauthorized: no token, or one that matches no principal.
    """
    if not token:
        raise Unauthorized("a bearer token is required: send Authorization: Bearer <token>")
    digest = token_hash(token)
    found: Principal | None = None
    for principal in config.principals:
        for stored in principal.token_sha256:
            if hmac.compare_digest(stored, digest):
                found = principal
    if found is None:
        raise Unauthorized("the bearer token is not valid; check it or ask for a new one")
    return found
