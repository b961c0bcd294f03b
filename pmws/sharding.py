"""Which replica records which market: rendezvous (highest-random-weight) hashing. Pure.

A market's shard is a function of its condition id and the shard count only, so both outcome tokens stay
together, every market lands on exactly one shard, and a market appearing or expiring moves no other market.
Going from N to N+1 shards moves only the ~1/(N+1) of markets the new shard wins.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from pmws.config import Config
from pmws.errors import ConfigError


def _weight(key: str, shard: int) -> int:
    digest = hashlib.blake2b(f"{shard}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def shard_of(condition_id: str, shard_count: int) -> int:
    """The shard (0 … count-1) that records the market with this condition id."""
    if shard_count < 1:
        raise ValueError("shard_count must be at least 1")
    if shard_count == 1:
        return 0
    return max(range(shard_count), key=lambda shard: _weight(condition_id, shard))


def shard_label(index: int, count: int) -> str:
    return f"{index}/{count}"


def resolve_shard(config: Config, env: Mapping[str, str]) -> tuple[int, int]:
    """(index, count) from config, or the StatefulSet ordinal at the end of HOSTNAME (`…-3`) in `env`."""
    index, count = config.run.shard_index, config.run.shard_count
    if config.run.shard_index_from_hostname:
        host = env.get("HOSTNAME", "")
        match = re.search(r"-(\d+)$", host)
        if not match:
            raise ConfigError(f"run.shard_index_from_hostname: HOSTNAME {host!r} does not end in -<ordinal>")
        index = int(match.group(1))
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"run.shard_index {index} must be in 0..{count - 1} (run.shard_count {count})")
    return index, count
