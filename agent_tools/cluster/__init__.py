"""The front-end's side of running past one machine: the Redis stores every front-end shares and
the engines of the Ray Serve pool, behind core's protocols (core never imports them)."""
