"""Exact percentage splits by smooth weighted round-robin.

A random draw only meets its percentages on average; a subscriber paying for 60/30/10 sees
every hundred calls. Smooth weighted round-robin with integer weights summing to 100 repeats
with period 100, so any 100 consecutive calls give each destination exactly its percentage,
and the picks are interleaved rather than bunched.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


class SplitCounters:
    """Round-robin state per split; passed into the evaluator so decisions stay deterministic."""

    def __init__(self) -> None:
        self._current: dict[Hashable, list[int]] = {}

    def pick(self, key: Hashable, weights: Sequence[int]) -> int:
        """Index of the next destination for the split `key` with these weights.

        The key includes the weights, so when a destination goes down (its weight drops out)
        the survivors start a fresh cycle over their own shares.
        """
        state_key = (key, tuple(weights))
        current = self._current.get(state_key)
        if current is None:
            current = self._current[state_key] = [0] * len(weights)
        best, highest = 0, None
        for index, weight in enumerate(weights):
            value = current[index] = current[index] + weight
            if highest is None or value > highest:  # the first of equals wins
                best, highest = index, value
        current[best] -= sum(weights)
        return best
