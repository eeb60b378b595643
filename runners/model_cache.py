"""The models a runner worker holds: the default one, always, plus other versions loaded lazily
on first use into an LRU bounded by ``MODEL_CACHE_MAX_MB``. A model's memory is measured when
it loads (the bytes of its arrays). Eviction never drops the default."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from model_registry import store
from model_registry.model import ArmorModel


class ModelCache:
    def __init__(self, family: str, default_tag: str | None, max_bytes: float):
        self.family, self.max_bytes = family, max_bytes
        self.default = store.load(family, default_tag)
        self._others: OrderedDict[str, ArmorModel] = OrderedDict()
        self._lock = threading.Lock()
        self._tags: dict[str, str] = {}
        self.loads, self.evictions = 1, 0

    def resolve(self, version: str) -> str:
        """Full tag of a version, resolved through the store once per version string (raises
        store.ModelNotFound or store.InvalidModelVersion)."""
        if version not in self._tags:
            self._tags[version] = str(store.resolve(self.family, version).tag)
        return self._tags[version]

    def get(self, version: str | None) -> ArmorModel:
        """The default model, or the named version (raises store.ModelNotFound listing the available)."""
        if version is None or version in (self.default.tag, self.default.tag.split(":")[1]):
            return self.default
        tag = self.resolve(version)
        if tag == self.default.tag:
            return self.default
        with self._lock:
            if tag in self._others:
                self._others.move_to_end(tag)
                return self._others[tag]
        model = store.load(self.family, tag)
        with self._lock:
            self._others[tag] = model
            self.loads += 1
            self._evict()
        return model

    def _evict(self) -> None:
        while self._others and self.memory_bytes() > self.max_bytes:
            self._others.popitem(last=False)
            self.evictions += 1

    def loaded(self) -> list[ArmorModel]:
        with self._lock:
            return [self.default, *self._others.values()]

    def memory_bytes(self) -> int:
        return self.default.memory_bytes + sum(m.memory_bytes for m in self._others.values())

    def describe(self) -> dict[str, Any]:
        with self._lock:
            loaded = [self.default, *self._others.values()]
            return {
                "default": self.default.tag,
                "max_mb": self.max_bytes / 1e6,
                "memory_mb": self.memory_bytes() / 1e6,
                "loads": self.loads,
                "evictions": self.evictions,
                "models": [{"tag": m.tag, "memory_mb": m.memory_bytes / 1e6} for m in loaded],
            }
