"""Collaborative models trained from interactions: item-item (BM25, cosine), ALS and EASE.

Item-item and ALS come from the ``implicit`` library; EASE (Steck 2019) is a closed form in
numpy, optionally with the items' text embeddings as side information (the item Gram matrix
gets ``alpha · E Eᵀ`` added, as in collective/content EASE): on data as sparse as a shop's,
two products whose descriptions say the same thing should share their collaborative weight.

Models are trained against an ordered list of product ids and re-aligned to whatever engine
snapshot is current (``aligned``), so a catalog change never needs a retrain to stay correct.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from backend.recommender.next_item import NumpySASRec

FloatArray = npt.NDArray[np.float32]
log = logging.getLogger(__name__)


class NextItemModel(Protocol):
    """One shopper's ordered item indexes (oldest first) → a logit per item
    (``next_item.NumpySASRec`` when trained and saved)."""

    def __call__(self, sequence: Sequence[int]) -> FloatArray: ...


EASE_MAX_ITEMS = 10_000  # a dense items×items float32 matrix: 400 MB at 10k items


@dataclass(frozen=True, slots=True)
class CFParams:
    knn_neighbours: int = 100
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    als_factors: int = 64
    als_regularization: float = 0.05
    als_alpha: float = 2.0
    als_iterations: int = 15
    ease_lambda: float = 80.0
    # Weight of the text-embedding Gram matrix in EASE (0: plain EASE).
    ease_content_alpha: float = 40.0
    ease_max_items: int = EASE_MAX_ITEMS
    seed: int = 7
    # Item-to-item transitions: an item counts as followed by each of the next ``window``
    # items of a shopper's sequence, the d-th one weighing ``transition_decay`` ** (d − 1).
    transition_window: int = 3
    transition_decay: float = 0.5


@dataclass
class CFModels:
    """Everything the collaborative strategies need, over ``item_ids`` in this order."""

    version: str
    item_ids: list[uuid.UUID]
    bm25: sp.csr_matrix | None = None
    cosine: sp.csr_matrix | None = None
    als_items: FloatArray | None = None
    als_regularization: float = 0.05
    als_alpha: float = 1.0
    ease: FloatArray | None = None
    # EASE with the text-embedding Gram added (None without embeddings or ``alpha = 0``).
    ease_content: FloatArray | None = None
    # Users who interacted with both items (binary Xᵀ X, diagonal removed): evidence only.
    co_counts: sp.csr_matrix | None = None
    # Row-normalised "what comes next" weights from the shoppers' ordered sequences.
    transitions: sp.csr_matrix | None = None
    # A sequential model's next-item logits for one shopper's ordered item indexes, over
    # ``item_ids`` (``next_item.NumpySASRec``); trained apart from the models above.
    next_item: NextItemModel | None = None
    # Why a saved next-item model could not be loaded (the source is then absent).
    next_item_error: str | None = None
    n_users: int = 0
    n_interactions: int = 0
    trained_at: float = field(default_factory=time.time)
    _aligned: dict[tuple[int, int], CFModels] = field(default_factory=dict, repr=False)
    _gram: npt.NDArray[np.float64] | None = field(default=None, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def als_gram_inverse(self) -> npt.NDArray[np.float64] | None:
        """(YᵀY + λI)⁻¹ of the ALS item factors, once per model: with it a user's fold-in is
        a rank-k update (k·f² per request instead of an f³ solve: 6 M vs 700 M at f=1,024)."""
        if self.als_items is None:
            return None
        if self._gram is None:
            y = self.als_items.astype(np.float64)
            self._gram = _spd_inverse(y.T @ y + self.als_regularization * np.eye(y.shape[1]))
        return self._gram

    def kinds(self) -> list[str]:
        names: list[tuple[str, object]] = [
            ("bm25", self.bm25),
            ("cosine", self.cosine),
            ("als", self.als_items),
            ("ease", self.ease),
            ("ease_content", self.ease_content),
            ("transitions", self.transitions),
            ("next_item", self.next_item),
        ]
        return [n for n, m in names if m is not None]

    def aligned(self, key: int, ids_of: Callable[[], Sequence[uuid.UUID]]) -> CFModels:
        """The same models re-indexed to another item order (new items get empty rows).

        ``key`` identifies the target order (a snapshot); the work is done once per key.
        """
        cache_key = (key, 0)
        hit = self._aligned.get(cache_key)
        if hit is not None:
            return hit
        item_ids = list(ids_of())
        if item_ids == self.item_ids:
            self._aligned[cache_key] = self
            return self
        own = {pid: i for i, pid in enumerate(self.item_ids)}
        src = np.fromiter((own.get(p, -1) for p in item_ids), np.int64, len(item_ids))
        keep = np.flatnonzero(src >= 0)
        n = len(item_ids)
        # P maps our item i to its new position: P[i, new] = 1.
        perm = sp.csr_matrix(
            (np.ones(len(keep), np.float32), (src[keep], keep)), shape=(self.n_items, n)
        )

        def remap(m: sp.csr_matrix | None) -> sp.csr_matrix | None:
            if m is None:
                return None
            out = sp.csr_matrix(perm.T @ m @ perm)
            out.sort_indices()
            return out

        def rows(m: FloatArray | None) -> FloatArray | None:
            if m is None:
                return None
            out = np.zeros((n, m.shape[1]), dtype=np.float32)
            out[keep] = m[src[keep]]
            return out

        def dense(m: FloatArray | None) -> FloatArray | None:
            if m is None:
                return None
            out = np.zeros((n, n), dtype=np.float32)
            out[np.ix_(keep, keep)] = m[np.ix_(src[keep], src[keep])]
            return out

        result = replace(
            self,
            item_ids=list(item_ids),
            bm25=remap(self.bm25),
            cosine=remap(self.cosine),
            als_items=rows(self.als_items),
            ease=dense(self.ease),
            ease_content=dense(self.ease_content),
            co_counts=remap(self.co_counts),
            transitions=remap(self.transitions),
            next_item=_reindexed(self.next_item, src, keep),
            _aligned={},
            _gram=None,
        )
        self._aligned.clear()  # only the newest alignment is worth its memory
        self._aligned[cache_key] = result
        return result


def _reindexed(
    scorer: NextItemModel | None,
    src: npt.NDArray[np.int64],
    keep: npt.NDArray[np.int64],
) -> NextItemModel | None:
    """``scorer`` in another item order: new item j is the model's ``src[j]`` (-1: unknown to
    the model, which then scores it -inf, i.e. 0 once the source is scaled)."""
    if scorer is None:
        return None

    def score(sequence: Sequence[int]) -> FloatArray:
        own = src[np.asarray(sequence, dtype=np.int64)]
        logits = scorer(own[own >= 0].tolist())
        out = np.full(len(src), -np.inf, dtype=np.float32)
        out[keep] = logits[src[keep]]
        return out

    return score


_SPARSE = ("bm25", "cosine", "co_counts", "transitions")
_DENSE = ("als_items", "ease", "ease_content")


def save(models: CFModels, path: Path) -> None:
    """Plain arrays in an .npz (no pickle: a model file is data, never code)."""
    arrays: dict[str, npt.NDArray[Any]] = {
        "item_ids": np.array([str(p) for p in models.item_ids]),
        "meta": np.array(
            [
                models.version,
                str(models.als_regularization),
                str(models.als_alpha),
                str(models.n_users),
                str(models.n_interactions),
                str(models.trained_at),
            ]
        ),
    }
    for name in _SPARSE:
        m = getattr(models, name)
        if m is not None:
            arrays[f"{name}.data"], arrays[f"{name}.indices"] = m.data, m.indices
            arrays[f"{name}.indptr"] = m.indptr
            arrays[f"{name}.shape"] = np.asarray(m.shape)
    for name in _DENSE:
        if getattr(models, name) is not None:
            arrays[name] = getattr(models, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if models.next_item is not None:
        if not isinstance(models.next_item, NumpySASRec):
            raise TypeError("only a next_item.NumpySASRec can be saved")
        models.next_item.save(next_item_path(path))
        # Expected on load, by this name: versions saved before the .npz format name a .pt.
        arrays["next_item"] = np.array([next_item_path(path).name])
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def load(path: Path) -> CFModels:
    with np.load(path, allow_pickle=False) as f:
        meta = [str(x) for x in f["meta"]]
        models = CFModels(
            version=meta[0],
            item_ids=[uuid.UUID(str(x)) for x in f["item_ids"]],
            als_regularization=float(meta[1]),
            als_alpha=float(meta[2]),
            n_users=int(meta[3]),
            n_interactions=int(meta[4]),
            trained_at=float(meta[5]),
        )
        for name in _SPARSE:
            if f"{name}.data" in f:
                shape = tuple(int(x) for x in f[f"{name}.shape"])
                setattr(
                    models,
                    name,
                    sp.csr_matrix(
                        (f[f"{name}.data"], f[f"{name}.indices"], f[f"{name}.indptr"]), shape=shape
                    ),
                )
        for name in _DENSE:
            if name in f:
                setattr(models, name, np.asarray(f[name], dtype=np.float32))
        next_item = str(f["next_item"][0]) if "next_item" in f else None
    if next_item is not None:
        _load_next_item(models, path.with_name(next_item))
    return models


def next_item_path(path: Path) -> Path:
    """Where the sequential model of the CF models at ``path`` lives (beside them)."""
    return path.with_name(f"{path.stem}-sequential.npz")


def _load_next_item(models: CFModels, path: Path) -> None:
    """A missing or damaged file costs the ``next_item`` source only, never the CF models:
    the hybrid then blends the others (its weight counts for nothing) and says why in the
    log and ``next_item_error``."""
    try:
        if path.suffix == ".pt":
            scorer = _converted(path)
        else:
            scorer = NumpySASRec.load(path)
        if scorer.n_items != models.n_items:
            raise ValueError(f"{scorer.n_items} items, the CF models have {models.n_items}")
    except Exception as exc:  # a damaged file: zip, shape or (old files) torch's errors
        models.next_item_error = f"next-item model {path.name} unusable: {exc}"
        log.error("%s; recommending without the next_item source", models.next_item_error)
        return
    models.next_item = scorer


def _converted(legacy: Path) -> NumpySASRec:
    """A version saved before the .npz format (``torch.save``) is read through torch once
    and written beside it as the .npz the next reader loads without torch.

    Why not drop its next-item model and let the worker refit: nothing would start the
    refit (the version's recorded kinds list next_item), and an upgraded shop would serve
    without the source (its health "degraded") until the next retrain, for a model that is
    fine. Reading it costs the first process that loads it the torch import every load cost
    before: once per version, and only until the next training saves one in the new format.
    """
    npz = legacy.with_suffix(".npz")
    if npz.exists():  # another process converted it already
        return NumpySASRec.load(npz)
    from backend.recommender.sequential import read_legacy  # torch: once, for old files only

    log.warning("next-item model %s predates the .npz format: converting it once", legacy.name)
    scorer = read_legacy(legacy)
    try:
        scorer.save(npz)
    except OSError as exc:  # a read-only models directory: serve it all the same
        log.warning("could not save %s (%s); serving it from memory", npz.name, exc)
    return scorer


def user_items_matrix(
    rows: Sequence[tuple[int, int, float]], n_users: int, n_items: int
) -> sp.csr_matrix:
    """(user, item, weight) triples → users×items CSR; repeated pairs add up."""
    if not rows:
        return sp.csr_matrix((n_users, n_items), dtype=np.float32)
    u, i, w = zip(*rows, strict=True)
    matrix = sp.csr_matrix(
        (np.asarray(w, np.float32), (np.asarray(u), np.asarray(i))),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    return matrix


def train(
    user_items: sp.csr_matrix,
    item_ids: Sequence[uuid.UUID],
    *,
    params: CFParams = CFParams(),  # noqa: B008 - frozen dataclass
    item_embeddings: FloatArray | None = None,
    kinds: Sequence[str] = ("bm25", "cosine", "als", "ease", "ease_content", "transitions"),
    version: str | None = None,
    progress: Callable[[str], None] | None = None,
    sequences: Sequence[Sequence[int]] | None = None,
) -> CFModels:
    """Fit the requested models on a users×items matrix of action weights.

    ``sequences`` (each shopper's items, oldest first) feed the transition model; without
    them it is not trained.
    """
    # Import first: the limit below only reaches BLAS libraries already loaded.
    from implicit.cpu.als import AlternatingLeastSquares  # noqa: F401
    from implicit.nearest_neighbours import ItemItemRecommender, bm25_weight, normalize
    from threadpoolctl import threadpool_limits

    user_items = sp.csr_matrix(user_items, dtype=np.float32)
    n_items = user_items.shape[1]
    if n_items != len(item_ids):
        raise ValueError("user_items has a column per item id")
    binary = user_items.copy()
    binary.data[:] = 1.0
    co = sp.csr_matrix(binary.T @ binary)
    co.setdiag(0)
    co.eliminate_zeros()
    co.sort_indices()  # the evidence binary-searches rows
    models = CFModels(
        version=version or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
        item_ids=list(item_ids),
        co_counts=co,
        n_users=int(user_items.shape[0]),
        n_interactions=int(binary.nnz),
        als_regularization=params.als_regularization,
        als_alpha=params.als_alpha,
    )
    k = max(1, min(params.knn_neighbours, n_items))

    def say(step: str) -> None:
        if progress is not None:
            progress(step)

    # implicit's own threading is in its native code; BLAS threads only slow it down.
    with threadpool_limits(1, "blas"):
        # What BM25Recommender / CosineRecommender.fit do, with the weighting handed over as
        # CSR (their own hand-over is COO, which implicit then warns about converting).
        if "bm25" in kinds:
            say("item-item BM25")
            weighted = sp.csr_matrix(bm25_weight(user_items.T, params.bm25_k1, params.bm25_b).T)
            bm25 = ItemItemRecommender(K=k)
            bm25.fit(weighted, show_progress=False)
            models.bm25 = _drop_diagonal(bm25.similarity)
        if "cosine" in kinds:
            say("item-item cosine")
            cosine = ItemItemRecommender(K=k)
            cosine.fit(sp.csr_matrix(normalize(user_items.T).T), show_progress=False)
            models.cosine = _drop_diagonal(cosine.similarity)
        if "als" in kinds and user_items.nnz:
            say("ALS")
            models.als_items = _fit_als(user_items, params)
    if "transitions" in kinds and sequences:
        say("item-to-item transitions")
        models.transitions = transition_matrix(
            sequences, n_items, window=params.transition_window, decay=params.transition_decay
        )
    if 0 < n_items <= params.ease_max_items:
        if "ease" in kinds:
            say("EASE")
            models.ease = ease_weights(binary, lam=params.ease_lambda)
        has_text = item_embeddings is not None and params.ease_content_alpha > 0
        if "ease_content" in kinds and has_text:
            say("EASE with text embeddings")
            models.ease_content = ease_weights(
                binary,
                lam=params.ease_lambda,
                item_embeddings=item_embeddings,
                content_alpha=params.ease_content_alpha,
            )
    return models


def transition_matrix(
    sequences: Sequence[Sequence[int]], n_items: int, *, window: int = 3, decay: float = 0.5
) -> sp.csr_matrix:
    """T[i, j]: how strongly j follows i, as a share of everything that follows i.

    Each time j comes d ≤ ``window`` steps after i in a sequence it adds ``decay`` ** (d − 1);
    rows are divided by their total plus one, so an item seen followed once by j does not
    claim certainty about it. Repeats of the same item (d steps to itself) are skipped.
    """
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[npt.NDArray[np.float32]] = []
    for seq in sequences:
        s = np.asarray(seq, dtype=np.int64)
        for d in range(1, min(window, len(s) - 1) + 1):
            src, dst = s[:-d], s[d:]
            keep = src != dst
            rows.append(src[keep])
            cols.append(dst[keep])
            vals.append(np.full(int(keep.sum()), decay ** (d - 1), dtype=np.float32))
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    counts = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
        dtype=np.float32,
    )
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scaled = sp.csr_matrix(sp.diags(1.0 / (totals + 1.0)).astype(np.float32) @ counts)
    scaled.sort_indices()
    return scaled


def _drop_diagonal(similarity: Any) -> sp.csr_matrix:
    out = sp.csr_matrix(similarity, dtype=np.float32)
    out.setdiag(0)
    out.eliminate_zeros()
    return out


def _fit_als(user_items: sp.csr_matrix, params: CFParams) -> FloatArray:
    return fit_als(user_items, params)[1]


def fit_als(user_items: sp.csr_matrix, params: CFParams) -> tuple[FloatArray, FloatArray]:
    """(user factors, item factors) of implicit's ALS on a users×items matrix."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # implicit parallelises natively; BLAS threads on top only slow it down (it checks, and
    # warns, when the model is built).
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.als_factors,
            regularization=params.als_regularization,
            alpha=params.als_alpha,
            iterations=params.als_iterations,
            random_state=params.seed,
        )
        model.fit(user_items, show_progress=False)
    return (
        np.asarray(model.user_factors, dtype=np.float32),
        np.asarray(model.item_factors, dtype=np.float32),
    )


def ease_weights(
    binary: sp.csr_matrix | None,
    *,
    lam: float,
    item_embeddings: FloatArray | None = None,
    content_alpha: float = 0.0,
    gram: npt.NDArray[np.float64] | None = None,
    text_gram: npt.NDArray[np.float64] | None = None,
) -> FloatArray:
    """EASE's closed form B = I − P·diag(1/diag P), P = (XᵀX + α·EEᵀ + λI)⁻¹, diag(B) = 0.

    ``gram`` (XᵀX) and ``text_gram`` (EEᵀ) may be passed precomputed: a grid over λ and α
    then pays only for the inversion. The matrix is symmetric positive definite (λ > 0), so
    it is inverted through its Cholesky factor, half the work of a general inverse.
    """
    if gram is None:
        if binary is None:
            raise ValueError("pass the interactions or their Gram matrix")
        gram = item_gram(binary)
    a = np.array(gram, dtype=np.float64, copy=True)
    if content_alpha > 0 and (text_gram is not None or item_embeddings is not None):
        if text_gram is None:
            e = np.asarray(item_embeddings, dtype=np.float64)
            text_gram = e @ e.T
        a += content_alpha * text_gram
    a[np.diag_indices_from(a)] += lam
    p = _spd_inverse(a)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


def item_gram(binary: sp.csr_matrix) -> npt.NDArray[np.float64]:
    """XᵀX of a users×items matrix, dense."""
    return np.asarray((binary.T @ binary).toarray(), dtype=np.float64)


def _spd_inverse(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Inverse of a symmetric positive definite matrix (overwrites ``a``)."""
    from scipy.linalg import lapack

    # ``a.T`` is the same symmetric matrix in Fortran order: LAPACK works on it in place.
    factor, info = lapack.dpotrf(a.T, lower=1, overwrite_a=1)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE's matrix is not positive definite (info={info})")
    # potri fills the lower triangle only; mirror it.
    upper = np.triu_indices_from(inverse, 1)
    inverse[upper] = inverse.T[upper]
    return np.asarray(inverse)


def als_user_scores(
    item_factors: FloatArray,
    items: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    *,
    regularization: float,
    alpha: float,
    gram: npt.NDArray[np.float64] | None = None,
) -> FloatArray:
    """Fold a user in (one ALS least-squares step, as implicit does) and score every item.

    ``gram`` is (YᵀY + λI)⁻¹ (``CFModels.als_gram_inverse``, the costly part); the user's items
    add Yᵤᵀ D Yᵤ (D = confidence − 1), solved by the Woodbury identity with a k×k system.
    """
    y = item_factors
    if len(items) == 0:
        return np.zeros(len(y), dtype=np.float32)
    yi = y[items].astype(np.float64)
    confidence = alpha * np.asarray(weights, dtype=np.float64)
    h = gram
    if h is None:
        h = _spd_inverse(y.T.astype(np.float64) @ y + regularization * np.eye(y.shape[1]))
    z, d = yi @ h, confidence - 1.0  # z = Yᵤ A⁻¹ (k × f), A = YᵀY + λI
    # (A + Yᵤᵀ D Yᵤ)⁻¹ = A⁻¹ − A⁻¹Yᵤᵀ (I + D Yᵤ A⁻¹ Yᵤᵀ)⁻¹ D Yᵤ A⁻¹
    inner = np.eye(len(items)) + d[:, None] * (z @ yi.T)
    hb = h @ (yi.T @ confidence)
    factor = hb - z.T @ np.linalg.solve(inner, d * (yi @ hb))
    return np.asarray(y @ factor.astype(np.float32), dtype=np.float32)


class ModelStore:
    """Holds the current models; swapped atomically after a (re)train."""

    def __init__(
        self, models: CFModels | None = None, *, on_access: Callable[[], None] | None = None
    ) -> None:
        self._models = models
        self._lock = threading.Lock()
        self.on_access = on_access  # called on each read: the owner's chance to load or train

    def current(self) -> CFModels | None:
        if self.on_access is not None:
            self.on_access()
        return self._models

    def current_unchecked(self) -> CFModels | None:
        """The models without triggering ``on_access`` (for the retrain check itself)."""
        return self._models

    def set(self, models: CFModels | None) -> None:
        with self._lock:
            self._models = models

    def for_items(self, key: int, ids_of: Callable[[], Sequence[uuid.UUID]]) -> CFModels | None:
        models = self.current()
        return None if models is None else models.aligned(key, ids_of)
