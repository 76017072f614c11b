"""What a run's tokens cost, from the spec's prices."""

from __future__ import annotations

from autobots.models.schemas import Price


def compute_cost(prompt_tokens: int, completion_tokens: int, price: Price | None) -> float:
    """USD for the given token counts; 0.0 when the model has no price.

    Rounded to 12 decimals so sums of many small costs do not print float noise.
    """
    if price is None:
        return 0.0
    cost = prompt_tokens / 1000 * price.prompt_per_1k + completion_tokens / 1000 * price.completion_per_1k
    return round(cost, 12)
