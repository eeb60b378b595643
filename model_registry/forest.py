"""Per-target tree ensembles compiled into flat NumPy arrays.

Why not call scikit-learn at serving time: one walk over these arrays gives, in a single
vectorised call for all targets of a family, (1) each target's ensemble mean, (2) the spread
across its trees (the per-row scale the conformal intervals are built on) and (3) per-feature
contributions that sum, with the base value, exactly to the prediction (Saabas' path
decomposition, as in the treeinterpreter package). The arrays save to ``.npz`` and load with
``allow_pickle=False``, so loading a model never unpickles bytes from the store.

Layout: the trees of all targets are concatenated, grouped by target (``tree_output`` is
non-decreasing). A leaf points to itself on both sides with an infinite threshold, so rows
that reach a leaf stay there while deeper rows keep walking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ARRAY_NAMES = ("left", "right", "feature", "threshold", "value", "roots", "tree_output")


@dataclass
class ForestPrediction:
    """Per-row mean and spread across trees, shape (n, n_outputs); contributions (n, F, O)."""

    mean: np.ndarray
    spread: np.ndarray
    contributions: np.ndarray | None
    base: np.ndarray


@dataclass
class CompiledForest:
    left: np.ndarray  # (nodes,) int32 global index; leaves point to themselves
    right: np.ndarray  # (nodes,) int32
    feature: np.ndarray  # (nodes,) int32; 0 at leaves (whose threshold is +inf)
    threshold: np.ndarray  # (nodes,) float64
    value: np.ndarray  # (nodes,) float64: the node's mean target
    roots: np.ndarray  # (trees,) int64 global index of each tree's root
    tree_output: np.ndarray  # (trees,) int64: the output each tree predicts, grouped
    depth: int = field(init=False)

    def __post_init__(self):
        self.n_outputs = int(self.tree_output.max()) + 1
        self.block_starts = np.searchsorted(self.tree_output, np.arange(self.n_outputs))
        self.trees_per_output = np.bincount(self.tree_output, minlength=self.n_outputs).astype(np.float64)
        if np.any(self.trees_per_output == 0) or np.any(np.diff(self.tree_output) < 0):
            raise ValueError("every output needs trees, grouped by output")
        self.depth = self._measure_depth()

    def _measure_depth(self) -> int:
        depth, frontier = 0, self.roots
        while True:
            children = np.concatenate([self.left[frontier], self.right[frontier]])
            children = np.unique(children[children != np.concatenate([frontier, frontier])])
            if children.size == 0:
                return depth
            depth, frontier = depth + 1, children

    @classmethod
    def from_trees(
        cls, trees_by_output: list[list], columns_by_output: list[np.ndarray] | None = None
    ) -> CompiledForest:
        """``trees_by_output[o]``: the fitted single-output sklearn ``tree_`` objects of output o;
        ``columns_by_output[o]``: the full-matrix column of each feature those trees were fitted on
        (when fitted on a subset of the columns)."""
        columns: list[np.ndarray | None] = (
            list(columns_by_output) if columns_by_output else [None for _ in trees_by_output]
        )
        trees = [(t, columns[o]) for o, group in enumerate(trees_by_output) for t in group]
        outputs = np.repeat(np.arange(len(trees_by_output)), [len(g) for g in trees_by_output])
        parts = [_tree_arrays(t, c) for t, c in trees]
        offsets = np.cumsum([0] + [len(p[0]) for p in parts[:-1]]).astype(np.int64)
        return cls(
            left=np.concatenate([p[0] + o for p, o in zip(parts, offsets, strict=False)]).astype(np.int32),
            right=np.concatenate([p[1] + o for p, o in zip(parts, offsets, strict=False)]).astype(np.int32),
            feature=np.concatenate([p[2] for p in parts]).astype(np.int32),
            threshold=np.concatenate([p[3] for p in parts]),
            value=np.concatenate([p[4] for p in parts]),
            roots=offsets,
            tree_output=outputs,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAY_NAMES}

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays().values()))

    def predict(self, X: np.ndarray, contributions: bool = False) -> ForestPrediction:
        """Walk all trees for all rows at once; one call serves every output."""
        n, n_features = X.shape
        flat_x = np.ascontiguousarray(X, dtype=np.float64).ravel()
        row_base = (np.arange(n) * n_features)[:, None]
        node = np.broadcast_to(self.roots, (n, len(self.roots)))
        contrib = np.zeros(n * n_features * self.n_outputs) if contributions else None
        for _ in range(self.depth):
            feature = self.feature[node]
            go_left = flat_x[row_base + feature] <= self.threshold[node]
            child = np.where(go_left, self.left[node], self.right[node])
            if contrib is not None:
                index = (row_base + feature) * self.n_outputs + self.tree_output
                contrib += np.bincount(
                    index.ravel(), weights=(self.value[child] - self.value[node]).ravel(), minlength=contrib.size
                )
            node = child
        leaf_values = self.value[node]
        mean = self._per_output_mean(leaf_values)
        spread = np.sqrt(self._per_output_mean((leaf_values - mean[:, self.tree_output]) ** 2))
        if contrib is not None:
            contrib = contrib.reshape(n, n_features, self.n_outputs) / self.trees_per_output
        base = np.add.reduceat(self.value[self.roots], self.block_starts) / self.trees_per_output
        return ForestPrediction(mean=mean, spread=spread, contributions=contrib, base=base)

    def _per_output_mean(self, per_tree: np.ndarray) -> np.ndarray:
        return np.add.reduceat(per_tree, self.block_starts, axis=1) / self.trees_per_output


def _tree_arrays(tree, columns: np.ndarray | None = None):
    is_leaf = tree.children_left < 0
    own = np.arange(tree.node_count)
    feature = np.where(is_leaf, 0, tree.feature)
    if columns is not None:
        feature = np.where(is_leaf, 0, np.asarray(columns)[feature])
    return (
        np.where(is_leaf, own, tree.children_left),
        np.where(is_leaf, own, tree.children_right),
        feature,
        np.where(is_leaf, np.inf, tree.threshold).astype(np.float64),
        tree.value[:, 0, 0].astype(np.float64),
    )
