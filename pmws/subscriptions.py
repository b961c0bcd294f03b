"""Spread markets over connections of at most N assets; change as little as possible. Pure."""

from __future__ import annotations


def plan_connections(current: list[list[str]], desired: list[list[str]], capacity: int) -> list[list[str]]:
    """New asset lists per connection slot.

    `current` is each slot's assets now; `desired` the token lists of the markets to record (a market's tokens
    stay on one connection). Assets no longer desired leave their slot, assets already placed stay where they
    are, and new markets fill the slot with most room, or a new slot. Slots keep their index (may be empty).
    """
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    wanted = {asset for market in desired for asset in market}
    slots = [[a for a in slot if a in wanted] for slot in current]
    placed = {asset for slot in slots for asset in slot}
    for market in desired:
        missing = [a for a in market if a not in placed]
        if not missing:
            continue
        room = [i for i, slot in enumerate(slots) if len(slot) + len(missing) <= capacity]
        if room:
            target = max(room, key=lambda i: capacity - len(slots[i]))
        else:
            slots.append([])
            target = len(slots) - 1
        slots[target].extend(missing)
        placed.update(missing)
    return slots
