"""A tiny name → factory registry, shared by divergences, datasets, models, schedules and scores."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from gan_anneal.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str):
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._items)

    def build(self, name: str, **settings) -> T:
        if name not in self._items:
            raise UserError(f"Unknown {self.kind} '{name}'. Valid choices: {', '.join(self.names())}.")
        return self._items[name](**settings)
