"""Running policies: batched generation, the hot-swapping policy pool, reward and log-prob scoring."""
