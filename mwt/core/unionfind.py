"""Disjoint sets of names: the one union-find behind the cost model's channel streams and the
exporter's channel spaces."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class UnionFind(Generic[T]):
    """Disjoint sets over hashable items, created on first sight.

    Which item represents a set is not part of the contract: callers group by `find` and order
    the groups themselves, so that results never depend on the order of unions.
    """

    def __init__(self) -> None:
        self.parent: dict[T, T] = {}

    def find(self, x: T) -> T:
        """The representative of `x`'s set (a new singleton set for an unseen item)."""
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]  # path halving
            x = self.parent[x]
        return x

    def union(self, a: T, b: T) -> None:
        """Join the sets of `a` and `b`."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb
