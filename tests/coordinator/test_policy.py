"""The pure placement policy: least committed cost per capacity, room, exclusions, ties."""

from __future__ import annotations

from coordinator.placement.policy import NodeLoad, select


def test_least_committed_per_capacity_wins() -> None:
    nodes = [NodeLoad("a", 10, 5), NodeLoad("b", 20, 8), NodeLoad("c", 4, 1)]
    assert select(nodes, 1) == "c"  # 0.25 < 0.4 < 0.5


def test_only_serving_not_excluded_nodes_with_room() -> None:
    nodes = [
        NodeLoad("full", 2, 2),
        NodeLoad("draining", 10, 0, serving=False),
        NodeLoad("excluded", 10, 0),
        NodeLoad("ok", 10, 9),
    ]
    assert select(nodes, 1, exclude={"excluded"}) == "ok"
    assert select(nodes, 2, exclude={"excluded"}) is None
    assert select([], 1) is None


def test_fits_exactly_despite_float_sums() -> None:
    assert select([NodeLoad("a", 1.0, 0.1 + 0.2)], 0.7) == "a"


def test_ties_are_deterministic() -> None:
    assert select([NodeLoad("b", 10, 0), NodeLoad("a", 10, 0)], 1) == "a"
    assert select([NodeLoad("a", 10, 0), NodeLoad("big", 20, 0)], 1) == "big"


def test_repeated_selection_fills_in_proportion_to_capacity() -> None:
    capacity = {"a": 10.0, "b": 20.0, "c": 30.0}
    committed = dict.fromkeys(capacity, 0.0)
    for _ in range(60):
        name = select([NodeLoad(n, capacity[n], committed[n]) for n in capacity], 1.0)
        assert name is not None
        committed[name] += 1.0
    assert committed == capacity
    assert select([NodeLoad(n, capacity[n], committed[n]) for n in capacity], 1.0) is None
