"""Sequential baselines: SASRec (Kang & McAuley 2018) and GRU4Rec (Hidasi et al. 2016).

The architecture and defaults follow RecBole's ``SASRec`` (hidden 64, feed-forward 256, two
post-norm transformer layers with two heads, dropout 0.5, GELU, max length 50, item
embeddings shared with the output layer, Adam at 1e-3) and ``GRU4Rec`` (embedding 64, one
GRU layer of 128). Training is full softmax cross-entropy over every item at every position
of a user's sequence (the SASRec paper's "next item at each step", with RecBole's CE loss),
which is both the stronger variant and cheaper per epoch than one sample per prefix.

Epochs are chosen by early stopping on the validation targets (NDCG@10, full ranking, the
user's history excluded). As in RecBole's leave-one-out protocol, the test ranks with the
same model fed the test histories (one item longer); it is never stopped on test. Models are
cached on disk by data and settings.
Everything runs on CPU with a bounded number of threads and fixed seeds.

This module is for training (and the evaluation): a trained SASRec is served and saved as
``to_numpy`` makes it, ``next_item.NumpySASRec``, which needs no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from backend.recommender.next_item import NumpySASRec

ARCHITECTURES = ("sasrec", "gru4rec")
TEXT_MODES = ("none", "init", "add")
Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SeqParams:
    architecture: str = "sasrec"
    hidden: int = 64
    inner: int = 256  # SASRec feed-forward width; GRU4Rec's recurrent state size is ``gru_hidden``
    gru_hidden: int = 128
    layers: int = 2
    heads: int = 2
    dropout: float = 0.5
    max_len: int = 50
    # RecBole trains at 1e-3 with batches of 2,048; smaller batches and a higher rate reach
    # the same place in far fewer epochs, which is what a shared 2-core machine can afford
    # (an epoch is ~90 GFLOP of full-softmax cross-entropy over 4,385 items).
    lr: float = 3e-3
    weight_decay: float = 0.0
    # Fewer sequences per batch in larger catalogues (``batch_for``): the full-softmax logits
    # are (positions × items), 5.5 GB of peak memory at 100k items with 128 per batch.
    batch_size: int = 128
    max_epochs: int = 16
    eval_every: int = 2
    patience: int = 2  # evaluations without improvement before stopping
    seed: int = 7
    # Product text in the item representation (sparse catalogues: most items are seen a few
    # times, so an ID embedding alone learns little about them). "none": IDs only; "init":
    # ID embeddings start from the text vectors' principal components; "add": each item is
    # its ID embedding plus a learned projection of its (fixed) text vector.
    text: str = "none"
    # One thread: on a shared, oversubscribed machine OpenMP's threads wait on each other and
    # two run slower than one.
    threads: int = 1

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}")
        if self.text not in TEXT_MODES:
            raise ValueError(f"text must be one of {TEXT_MODES}")


class FitStopped(Exception):
    """``fit`` was told to stop; it returns no model."""


@dataclass
class FitInfo:
    epochs: int  # epochs of the returned model
    seconds: float  # training time (0 when read from the cache)
    valid_ndcg10: float | None  # best validation NDCG@10 seen while training (early stopping)
    curve: list[tuple[int, float]]  # (epoch, validation NDCG@10)
    cached: bool = False


class SASRec(nn.Module):
    """RecBole's SASRec: item + position embeddings, post-norm causal transformer layers."""

    def __init__(self, n_items: int, params: SeqParams, text: Vectors | None = None) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, params.hidden, padding_idx=0)
        self.text = _TextItems(text, params) if text is not None and params.text == "add" else None
        self.positions = nn.Embedding(params.max_len, params.hidden)
        self.norm = nn.LayerNorm(params.hidden, eps=1e-12)
        self.drop = nn.Dropout(params.dropout)
        layer = nn.TransformerEncoderLayer(
            params.hidden,
            params.heads,
            params.inner,
            params.dropout,
            activation="gelu",
            batch_first=True,
            layer_norm_eps=1e-12,
        )
        self.encoder = nn.TransformerEncoder(layer, params.layers, enable_nested_tensor=False)
        mask = torch.triu(torch.full((params.max_len, params.max_len), float("-inf")), 1)
        self.register_buffer("causal", mask, persistent=False)
        self.apply(_init)
        if text is not None and params.text == "init":
            start = torch.from_numpy(_principal(text, params.hidden))
            # Fewer components than dimensions (tiny catalogues): the rest stay random.
            self.items.weight.data[1:, : start.shape[1]] = start

    def forward(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden state after each position; ``table`` is ``item_matrix()`` when the caller
        already has it (with text, computing it is most of a single sequence's cost)."""
        # Right-padded: real items first, so no position attends only to padding.
        length = seq.shape[1]
        pos = torch.arange(length, device=seq.device)
        if table is None and self.text is not None:
            table = self.item_matrix()
        embedded = table[seq] if table is not None else self.items(seq)
        x = self.drop(self.norm(embedded + self.positions(pos)[None]))
        causal: torch.Tensor = self.causal  # type: ignore[assignment]
        out: torch.Tensor = self.encoder(x, mask=causal[:length, :length], is_causal=True)
        return out

    def item_matrix(self) -> torch.Tensor:
        weight: torch.Tensor = self.items.weight
        if self.text is None:
            return weight
        projected: torch.Tensor = self.text()
        return weight + projected


class _TextItems(nn.Module):
    """A learned projection of each item's fixed text vector (row 0, padding, stays 0)."""

    def __init__(self, text: Vectors, params: SeqParams) -> None:
        super().__init__()
        padded = np.zeros((len(text) + 1, text.shape[1]), dtype=np.float32)
        padded[1:] = text
        self.register_buffer("vectors", torch.from_numpy(padded), persistent=False)
        self.project = nn.Linear(text.shape[1], params.hidden, bias=False)

    def forward(self) -> torch.Tensor:
        vectors: torch.Tensor = self.vectors  # type: ignore[assignment]
        out: torch.Tensor = self.project(vectors)
        return out


def _principal(text: Vectors, dims: int, std: float = 0.02) -> npt.NDArray[np.float32]:
    """The text vectors' top principal components, scaled to the default init's spread."""
    centred = text.astype(np.float64) - text.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected: npt.NDArray[np.float64] = centred @ vt[:dims].T
    scaled = projected * (std / max(float(projected.std()), 1e-12))
    return np.asarray(scaled, dtype=np.float32)


class GRU4Rec(nn.Module):
    """RecBole's GRU4Rec: embeddings, one GRU layer, projected back to the item space."""

    def __init__(self, n_items: int, params: SeqParams) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, params.hidden, padding_idx=0)
        self.drop = nn.Dropout(min(params.dropout, 0.3))
        self.gru = nn.GRU(params.hidden, params.gru_hidden, batch_first=True)
        self.out = nn.Linear(params.gru_hidden, params.hidden)
        self.apply(_init)

    def forward(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        embedded = table[seq] if table is not None else self.items(seq)
        hidden, _ = self.gru(self.drop(embedded))
        out: torch.Tensor = self.out(hidden)
        return out

    def item_matrix(self) -> torch.Tensor:
        return self.items.weight


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Embedding):
        module.weight.data.normal_(0.0, 0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()
    if isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()


def build_model(n_items: int, params: SeqParams, text: Vectors | None = None) -> SASRec | GRU4Rec:
    """Item 0 is padding; catalogue item i is token i + 1."""
    if params.architecture == "sasrec":
        if params.text != "none" and text is None:
            raise ValueError(f"text={params.text!r} needs the items' text vectors")
        return SASRec(n_items, params, text if params.text != "none" else None)
    return GRU4Rec(n_items, params)


def _pad(sequences: Sequence[Sequence[int]], length: int) -> npt.NDArray[np.int64]:
    """Newest ``length`` items of each sequence as tokens (item + 1), right-padded with 0."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = list(seq)[-length:]
        out[row, : len(tail)] = np.asarray(tail, dtype=np.int64) + 1
    return out


def scores(
    model: SASRec | GRU4Rec,
    histories: Sequence[Sequence[int]],
    params: SeqParams,
    *,
    batch_size: int = 512,
) -> npt.NDArray[np.float32]:
    """Next-item scores for every catalogue item after each history (users × items)."""
    model.eval()
    tokens = _pad(histories, params.max_len)
    lengths = np.asarray([max(1, min(len(h), params.max_len)) for h in histories])
    out = np.zeros((len(histories), 0), dtype=np.float32)
    with torch.no_grad():
        table = model.item_matrix()
        items = table[1:]
        out = np.zeros((len(histories), items.shape[0]), dtype=np.float32)
        order = np.argsort(lengths, kind="stable")  # similar lengths share a batch
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            hidden = model(torch.from_numpy(tokens[rows, :width]), table)
            last = torch.from_numpy(lengths[rows] - 1)
            state = hidden[torch.arange(len(rows)), last]
            out[rows] = (state @ items.T).numpy()
    return out


def set_threads(n: int) -> int:
    """torch's intra-op threads for the whole process; returns the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous


_THREADS = threading.Lock()


class NextItemScorer:
    """A trained model in memory as the hybrid's ``next_item`` source (the evaluation's and
    the benches'; a served SASRec is ``to_numpy``'s): one shopper's ordered items (catalogue
    indexes, oldest first) → a logit per catalogue item.

    The item table is computed once here, so a request costs one forward pass over at most
    ``max_len`` positions and one (items × hidden) product.
    """

    def __init__(self, model: SASRec | GRU4Rec, params: SeqParams) -> None:
        model.eval()
        self.model, self.params = model, params
        with torch.no_grad():
            self.table = model.item_matrix().detach().clone()
        self.n_items = self.table.shape[0] - 1
        self._fast: NumpySASRec | None = None  # built on first use

    def __call__(self, sequence: Sequence[int]) -> npt.NDArray[np.float32]:
        if isinstance(self.model, SASRec):
            if self._fast is None:
                self._fast = to_numpy(self.model, self.params, table=self.table)
            return self._fast(sequence)
        tail = np.asarray(list(sequence)[-self.params.max_len :], dtype=np.int64) + 1
        if len(tail) == 0:
            return np.zeros(self.n_items, dtype=np.float32)
        # torch's pool of threads is process-wide, and on a busy machine its threads wait on
        # each other: at 100k items under load, 2 threads took 170 ms median for what 1 does
        # in 0.9 ms. The lock keeps concurrent requests from restoring each other's setting.
        with _THREADS:
            previous = torch.get_num_threads()
            torch.set_num_threads(self.params.threads)
            try:
                return self._logits(tail)
            finally:
                torch.set_num_threads(previous)

    def _logits(self, tail: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        with torch.no_grad():
            hidden = self.model(torch.from_numpy(tail[None, :]), self.table)
            logits: npt.NDArray[np.float32] = (self.table[1:] @ hidden[0, -1]).numpy()
        return logits

    @property
    def nbytes(self) -> int:
        """Parameters and item table, in bytes (what a server holds for this source)."""
        own = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return int(own + self.table.numel() * self.table.element_size())


def to_numpy(
    model: SASRec,
    params: SeqParams,
    *,
    table: torch.Tensor | None = None,
    epochs: int = 0,
    seconds: float = 0.0,
) -> NumpySASRec:
    """A trained SASRec as served and saved: its arrays in the numpy forward pass's layout
    (weights transposed for ``x @ w``), the settings it was trained with, and how long that
    took. The item table keeps the text projection added in, so serving needs neither the
    text vectors nor the projection. ``table``: ``model.item_matrix()`` when already at hand.
    """
    model.eval()
    with torch.no_grad():
        table = model.item_matrix() if table is None else table

        def arr(t: torch.Tensor) -> npt.NDArray[np.float32]:
            return t.detach().numpy().astype(np.float32, copy=True)

        arrays = {
            "items": arr(table[1:]),  # row 0 is padding, never in a served sequence
            "positions": arr(model.positions.weight),
            "norm.weight": arr(model.norm.weight),
            "norm.bias": arr(model.norm.bias),
        }
        eps = {model.norm.eps}
        for i, layer in enumerate(model.encoder.layers):
            attn = layer.self_attn
            eps |= {layer.norm1.eps, layer.norm2.eps}
            arrays |= {
                f"layer{i}.in_proj": arr(attn.in_proj_weight).T,
                f"layer{i}.in_bias": arr(attn.in_proj_bias),
                f"layer{i}.out_proj": arr(attn.out_proj.weight).T,
                f"layer{i}.out_bias": arr(attn.out_proj.bias),
                f"layer{i}.norm1.weight": arr(layer.norm1.weight),
                f"layer{i}.norm1.bias": arr(layer.norm1.bias),
                f"layer{i}.ff1": arr(layer.linear1.weight).T,
                f"layer{i}.ff1_bias": arr(layer.linear1.bias),
                f"layer{i}.ff2": arr(layer.linear2.weight).T,
                f"layer{i}.ff2_bias": arr(layer.linear2.bias),
                f"layer{i}.norm2.weight": arr(layer.norm2.weight),
                f"layer{i}.norm2.bias": arr(layer.norm2.bias),
            }
    if len(eps) != 1:  # SASRec builds every norm with one eps; the file keeps one
        raise ValueError(f"layer norms with different eps: {sorted(eps)}")
    meta = {
        "params": asdict(params),
        "heads": model.encoder.layers[0].self_attn.num_heads,
        "eps": eps.pop(),
        "epochs": epochs,
        "seconds": round(seconds, 2),
    }
    return NumpySASRec(arrays, meta)


def read_legacy(path: Path) -> NumpySASRec:
    """A next-item model saved before the .npz format: ``torch.save`` of the state dict
    (without the text projection) and the item table, the settings and the table's digest
    in ``path.with_suffix(".json")``. ``ValueError`` (or OSError, or torch's errors) when
    damaged."""
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    params = SeqParams(**meta["params"])
    if params.architecture != "sasrec":
        raise ValueError(f"{path.name}: a {params.architecture} model is not served")
    saved = torch.load(path, weights_only=True)
    table = saved["table"]
    if tuple(table.shape) != (meta["n_items"] + 1, params.hidden):
        raise ValueError(f"{path.name}: item table of shape {tuple(table.shape)}")
    if hashlib.sha256(table.numpy().tobytes()).hexdigest() != meta["table_sha256"]:
        raise ValueError(f"{path.name}: item table does not match its digest")
    # The text projection is already in the table: build the model without it.
    model = build_model(meta["n_items"], replace(params, text="none"))
    model.load_state_dict(saved["state"])
    assert isinstance(model, SASRec)
    return to_numpy(
        model, params, table=table, epochs=meta.get("epochs", 0), seconds=meta.get("seconds", 0)
    )


def top_lists(
    score_matrix: npt.NDArray[np.float32],
    histories: Sequence[Sequence[int]],
    k: int = 20,
) -> list[list[int]]:
    """Best k items per user, the user's own history excluded (full ranking)."""
    lists: list[list[int]] = []
    for row, history in zip(score_matrix, histories, strict=True):
        row = row.copy()
        row[np.asarray(history, dtype=np.int64)] = -np.inf
        best = np.argpartition(-row, k)[:k] if len(row) > k else np.arange(len(row))
        lists.append(best[np.argsort(-row[best], kind="stable")].tolist())
    return lists


def ndcg10(lists: Sequence[Sequence[int]], targets: Sequence[int]) -> float:
    total = 0.0
    for ranked, target in zip(lists, targets, strict=True):
        top = list(ranked[:10])
        if target in top:
            total += 1.0 / math.log2(top.index(target) + 2)
    return total / max(len(targets), 1)


# Items × sequences per training batch: 128 sequences up to 10,000 items, fewer beyond.
LOGITS_BUDGET = 128 * 10_000


def batch_for(n_items: int, params: SeqParams) -> int:
    """Sequences per training batch: ``params.batch_size``, fewer in catalogues so large that
    the batch's (positions × items) logits and their gradient would not fit in memory."""
    return max(8, min(params.batch_size, LOGITS_BUDGET // max(n_items, 1)))


def fit(
    sequences: Sequence[Sequence[int]],
    n_items: int,
    params: SeqParams,
    *,
    valid: tuple[Sequence[Sequence[int]], Sequence[int]] | None = None,
    epochs: int | None = None,
    text: Vectors | None = None,
    say: Callable[[str], None] = lambda _m: None,
    max_seconds: float | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[SASRec | GRU4Rec, FitInfo]:
    """Train on every next-item step of ``sequences``.

    ``stop``: asked between batches; when it says so the fit raises ``FitStopped`` (a process
    shutting down: a torch thread still training at interpreter exit aborts it).

    ``max_seconds``: no epoch is started that would, at the pace so far, end after it (at
    least one always runs); ``FitInfo.epochs`` says how many ran.

    With ``valid`` (histories, targets) the epoch count is chosen by early stopping on
    validation NDCG@10 and the best model is returned; otherwise it trains ``epochs`` epochs.
    """
    old_threads = torch.get_num_threads()
    torch.set_num_threads(params.threads)
    try:
        torch.manual_seed(params.seed)
        rng = np.random.default_rng(params.seed)
        model = build_model(n_items, params, text)
        optimiser = torch.optim.Adam(
            model.parameters(), lr=params.lr, weight_decay=params.weight_decay
        )
        usable = [list(s)[-(params.max_len + 1) :] for s in sequences if len(s) >= 2]
        tokens = _pad(usable, params.max_len + 1)
        inputs, labels = tokens[:, :-1], tokens[:, 1:]
        budget = epochs if epochs is not None else params.max_epochs
        best: tuple[float, int, dict[str, Any] | None] = (-1.0, 0, None)
        curve: list[tuple[int, float]] = []
        since_best, done = 0, 0
        started = time.perf_counter()
        lengths = (inputs > 0).sum(axis=1)
        per_batch = batch_for(n_items, params)
        for epoch in range(1, budget + 1):
            model.train()
            # Batches of similar length, cut to their longest sequence: most shoppers have
            # a handful of items, so padding every batch to ``max_len`` would waste ~85%.
            order = np.lexsort((rng.random(len(inputs)), lengths))
            batches = [
                order[start : start + per_batch] for start in range(0, len(order), per_batch)
            ]
            total = 0.0
            for b in rng.permutation(len(batches)):
                if stop is not None and stop():
                    raise FitStopped(f"stopped in epoch {epoch}")
                batch = batches[b]
                width = int(lengths[batch].max())
                seq = torch.from_numpy(inputs[batch, :width])
                target = torch.from_numpy(labels[batch, :width])
                hidden = model(seq)
                keep = target > 0  # only real next items (skips padding)
                logits = hidden[keep] @ model.item_matrix().T
                logits[:, 0] = float("-inf")  # never predict padding
                loss = torch.nn.functional.cross_entropy(logits, target[keep])
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            done = epoch
            elapsed = time.perf_counter() - started
            if max_seconds is not None and elapsed * (epoch + 1) / epoch > max_seconds:
                say(f"  {params.architecture}: stopped after {epoch} epochs ({elapsed:.0f} s)")
                break
            if valid is None or epoch % params.eval_every:
                continue
            histories, targets = valid
            score = ndcg10(top_lists(scores(model, histories, params), histories), targets)
            curve.append((epoch, score))
            say(
                f"  {params.architecture} epoch {epoch}: loss {total / len(order):.3f}, "
                f"validation NDCG@10 {score:.4f}"
            )
            if score > best[0]:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best, since_best = (score, epoch, state), 0
            else:
                since_best += 1
                if since_best >= params.patience:
                    break
        seconds = time.perf_counter() - started
        if valid is not None and best[2] is not None:
            model.load_state_dict(best[2])
            return model, FitInfo(best[1], seconds, best[0], curve)
        return model, FitInfo(done, seconds, None, curve)
    finally:
        torch.set_num_threads(old_threads)


def cached_fit(
    cache_dir: Path | None,
    name: str,
    sequences: Sequence[Sequence[int]],
    n_items: int,
    params: SeqParams,
    *,
    valid: tuple[Sequence[Sequence[int]], Sequence[int]] | None = None,
    epochs: int | None = None,
    text: Vectors | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[SASRec | GRU4Rec, FitInfo]:
    """``fit``, or the same model from the cache (keyed by the data and every setting)."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in asdict(params).items() if k != "threads"}  # same model
    digest.update(json.dumps([settings, n_items, epochs, valid is not None]).encode())
    for seq in sequences:
        digest.update(np.asarray(seq, dtype=np.int64).tobytes() + b"|")
    if valid is not None:
        digest.update(np.asarray(valid[1], dtype=np.int64).tobytes())
    if text is not None and params.text != "none":
        digest.update(np.ascontiguousarray(text, dtype=np.float32).tobytes())
    key = f"{name}-{params.architecture}-{digest.hexdigest()[:16]}"
    if cache_dir is not None:
        weights, meta = cache_dir / f"{key}.pt", cache_dir / f"{key}.json"
        if weights.exists() and meta.exists():
            model = build_model(n_items, params, text)
            model.load_state_dict(torch.load(weights, weights_only=True))
            info = FitInfo(**json.loads(meta.read_text(encoding="utf-8")))
            info.curve = [tuple(p) for p in info.curve]  # type: ignore[misc]
            return model, replace(info, cached=True)
    model, info = fit(sequences, n_items, params, valid=valid, epochs=epochs, text=text, say=say)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), weights)
        meta.write_text(json.dumps(asdict(info)), encoding="utf-8")
    return model, info


__all__ = [
    "ARCHITECTURES",
    "FitInfo",
    "NextItemScorer",
    "SeqParams",
    "cached_fit",
    "fit",
    "read_legacy",
    "scores",
    "to_numpy",
    "top_lists",
]
