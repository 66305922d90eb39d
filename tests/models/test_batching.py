from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from preflab.models.batching import plan_batches


def cost(items: list[int]) -> tuple[int, int]:
    return len(items) * max(items), sum(items)


@given(st.lists(st.integers(1, 300), max_size=60), st.integers(50, 2000))
def test_every_item_once_and_caps_respected(lengths: list[int], cap: int) -> None:
    plan = plan_batches(lengths, sort_key=lambda x: (x,), cost=cost, max_tokens=cap,
                        max_waste=1.5)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    for batch in plan:
        padded, real = cost([lengths[i] for i in batch])
        assert len(batch) == 1 or (padded <= cap and padded <= 1.5 * real)
