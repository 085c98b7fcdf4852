"""A layered (Sugiyama-style) layout of the service map: columns left to right in call order, rows ordered to cut
edge crossings. Pure functions; the page turns (layer, order) into coordinates.

1. Cycles (a calls b calls a) are broken greedily: edges are kept busiest first (the entry node's first), and an
   edge that would close a cycle among those kept is a `back` edge, drawn right to left. A rare call back up the
   stack is then the back edge, never the main flow.
2. Layer = longest path from an entry point over the remaining edges, so every forward edge points right.
3. Rows: edges spanning several layers get placeholder nodes in the layers between, then a few barycentre sweeps
   (down, then up) order each layer by the mean row of its neighbours; ties keep name order so the layout is stable.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

SWEEPS = 4


@dataclass(frozen=True)
class Layout:
    layer: dict[str, int]
    order: dict[str, int]
    back_edges: frozenset[tuple[str, str]]


def map_layout(
    nodes: list[str],
    edges: list[tuple[str, str]],
    *,
    first: str | None = None,
    weights: dict[tuple[str, str], int] | None = None,
) -> Layout:
    """Layer and row of every node; `first` (the synthetic clients node) starts the call order; `weights` (calls
    per edge) decide which direction of a cycle is the main one."""
    names = sorted(set(nodes) | {n for edge in edges for n in edge})
    weight = weights or {}
    successors: dict[str, list[str]] = defaultdict(list)
    back: set[tuple[str, str]] = set()
    # Busiest edges first (the entry node's before all): an edge that would close a cycle among the edges kept so
    # far is the back edge, so a rare call back up the stack is drawn backwards, not the main flow.
    ordered = sorted(
        {edge for edge in edges if edge[0] != edge[1]},
        key=lambda edge: (edge[0] != first, -weight.get(edge, 0), edge),
    )
    for source, target in ordered:
        if _reaches(successors, target, source):
            back.add((source, target))
        else:
            successors[source].append(target)

    forward = {s: sorted(ts) for s, ts in successors.items()}
    indegree: dict[str, int] = defaultdict(int)
    for targets in forward.values():
        for target in targets:
            indegree[target] += 1
    layer = dict.fromkeys(names, 0)
    ready = [n for n in names if indegree[n] == 0]
    while ready:  # Kahn's order over the now acyclic graph; longest path in one pass
        node = ready.pop()
        for target in forward.get(node, []):
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)

    # Placeholders for long edges, so a call from layer 0 to layer 3 pulls rows in layers 1 and 2 too.
    columns: dict[int, list[str]] = defaultdict(list)
    for name in names:
        columns[layer[name]].append(name)
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for source, targets in forward.items():
        for target in targets:
            previous = source
            for step in range(layer[source] + 1, layer[target]):
                dummy = f"\0{source}\0{target}\0{step}"
                columns[step].append(dummy)
                down[previous].append(dummy)
                up[dummy].append(previous)
                previous = dummy
            down[previous].append(target)
            up[target].append(previous)

    position = {name: index for column in columns.values() for index, name in enumerate(column)}
    depth = max(columns) if columns else 0
    for sweep in range(SWEEPS):
        layers = range(1, depth + 1) if sweep % 2 == 0 else range(depth - 1, -1, -1)
        neighbours = up if sweep % 2 == 0 else down
        for index in layers:
            column = columns[index]

            def barycentre(name: str, neighbours: dict[str, list[str]] = neighbours) -> float:
                linked = neighbours.get(name)
                return sum(position[n] for n in linked) / len(linked) if linked else position[name]

            column.sort(key=lambda name: (barycentre(name), position[name]))
            for row, name in enumerate(column):
                position[name] = row

    order = {}
    for column in columns.values():
        real = [name for name in column if not name.startswith("\0")]
        order.update({name: row for row, name in enumerate(real)})
    return Layout(layer=layer, order=order, back_edges=frozenset(back))


def _reaches(successors: dict[str, list[str]], start: str, goal: str) -> bool:
    seen = {start}
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for child in successors.get(node, ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return False
