"""The served next-item model: SASRec's forward pass in numpy, and its file (plain arrays).

Training needs torch (``sequential``); serving does not, and must not pay for it: loading a
version saved with torch cost a process 1.9 s of CPU and 260 MB (torch's import, mostly),
this format 0.05 s and 4 MB at 10k products; 0.18 s and 26 MB against 0.04 s and 4 MB where
torch was imported already (bench/next_item_load.py). A trained SASRec is saved as the
arrays this forward pass uses, in the layout it uses them (weights as ``x @ w``), so loading
is ``np.load`` and nothing else. This module never imports torch. (The embedding model
does: sentence-transformers runs on torch, so an API process whose catalogue is indexed
imports it for search all the same; the next-item model no longer adds to that.)
"""

from __future__ import annotations

import json
import math
import os
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import erf

from backend.recommender.matvec import matvec

FORMAT = "sasrec-numpy/1"
Floats = npt.NDArray[np.float32]
_Norm = tuple[Floats, Floats, float]  # weight, bias, eps
# One post-norm transformer layer, as ``__call__`` unpacks it.
_Layer = tuple[Floats, Floats, Floats, Floats, _Norm, Floats, Floats, Floats, Floats, _Norm]
# A layer's arrays in the file, ``layer{i}.{name}``, in ``_Layer``'s order (norms as two).
LAYER_ARRAYS = (
    "in_proj",  # (d, 3d): queries, keys, values
    "in_bias",
    "out_proj",  # (d, d)
    "out_bias",
    "norm1.weight",
    "norm1.bias",
    "ff1",  # (d, inner)
    "ff1_bias",
    "ff2",  # (inner, d)
    "ff2_bias",
    "norm2.weight",
    "norm2.bias",
)


class NumpySASRec:
    """SASRec's forward pass for one shopper in numpy, the same arithmetic as the torch
    model in eval mode (post-norm layers, exact GELU, causal attention): one shopper's
    ordered items (catalogue indexes, oldest first) → a logit per catalogue item.

    Serving scores one short sequence per request, where torch's per-operation dispatch is
    most of the cost (0.9 ms for what is ~0.1 ms of arithmetic at 1,000 items). Only the
    newest position's output is needed, so the last layer computes only that row.

    ``arrays``: ``items`` (n_items × d, the item table with any text projection already
    added), ``positions`` (max_len × d), ``norm.weight``, ``norm.bias`` and each layer's
    ``LAYER_ARRAYS``. ``meta``: ``heads`` and ``eps`` (the layer norms') are read; the rest
    (training settings, epochs, seconds) is kept and saved as it is.
    """

    def __init__(self, arrays: Mapping[str, Floats], meta: Mapping[str, Any]) -> None:
        self.arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
        self.meta = dict(meta)
        self.items = self.arrays["items"]
        self.positions = self.arrays["positions"]
        self.n_items, d = self.items.shape
        self.max_len = len(self.positions)
        self.heads = int(self.meta["heads"])
        eps = float(self.meta["eps"])
        self.norm = (self.arrays["norm.weight"], self.arrays["norm.bias"], eps)
        self.layers: list[_Layer] = []
        for i in range(sum(1 for k in self.arrays if k.endswith(".in_proj"))):
            a = {name: self.arrays[f"layer{i}.{name}"] for name in LAYER_ARRAYS}
            self.layers.append(
                (
                    a["in_proj"],
                    a["in_bias"],
                    a["out_proj"],
                    a["out_bias"],
                    (a["norm1.weight"], a["norm1.bias"], eps),
                    a["ff1"],
                    a["ff1_bias"],
                    a["ff2"],
                    a["ff2_bias"],
                    (a["norm2.weight"], a["norm2.bias"], eps),
                )
            )
        self._check(d)

    def _check(self, d: int) -> None:
        """A file that is not a complete model of consistent shapes is refused here, not at
        the first request."""
        expected = {"items", "positions", "norm.weight", "norm.bias"} | {
            f"layer{i}.{name}" for i in range(len(self.layers)) for name in LAYER_ARRAYS
        }
        if set(self.arrays) != expected or not self.layers:
            raise ValueError(f"arrays {sorted(set(self.arrays) ^ expected)} unexpected or missing")
        if self.heads < 1 or d % self.heads or self.positions.shape[1:] != (d,):
            raise ValueError(f"{self.heads} heads, positions {self.positions.shape}, d={d}")
        for i, (w_in, b_in, w_out, b_out, n1, w1, b1, w2, b2, n2) in enumerate(self.layers):
            inner = w1.shape[1]
            shapes = [w_in.shape, b_in.shape, w_out.shape, b_out.shape, w1.shape, b1.shape]
            shapes += [w2.shape, b2.shape, n1[0].shape, n1[1].shape, n2[0].shape, n2[1].shape]
            want = [(d, 3 * d), (3 * d,), (d, d), (d,), (d, inner), (inner,), (inner, d), (d,)]
            if shapes != want + [(d,)] * 4:
                raise ValueError(f"layer {i}: shapes {shapes}, expected {want} and (d,) norms")
        if self.norm[0].shape != (d,) or self.norm[1].shape != (d,):
            raise ValueError(f"input norm of shape {self.norm[0].shape}, expected ({d},)")

    def __call__(self, sequence: Sequence[int]) -> Floats:
        tail = np.asarray(list(sequence)[-self.max_len :], dtype=np.int64)
        if len(tail) == 0:
            return np.zeros(self.n_items, dtype=np.float32)
        n = len(tail)
        x = _layer_norm(self.items[tail] + self.positions[:n], self.norm)
        d = x.shape[1]
        h = self.heads
        dh = d // h
        causal = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
        for depth, (w_in, b_in, w_out, b_out, n1, w1, b1, w2, b2, n2) in enumerate(self.layers):
            last = depth == len(self.layers) - 1
            qkv = x @ w_in + b_in
            q = (qkv[-1:, :d] if last else qkv[:, :d]).reshape(-1, h, dh).transpose(1, 0, 2)
            k = qkv[:, d : 2 * d].reshape(n, h, dh).transpose(1, 2, 0)
            v = qkv[:, 2 * d :].reshape(n, h, dh).transpose(1, 0, 2)
            att = (q / np.float32(math.sqrt(dh))) @ k + (causal[-1:] if last else causal)
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            mixed = (att @ v).transpose(1, 0, 2).reshape(-1, d) @ w_out + b_out
            x = _layer_norm((x[-1:] if last else x) + mixed, n1)
            inner = x @ w1 + b1
            inner = 0.5 * inner * (1.0 + erf(inner / np.float32(math.sqrt(2.0))))
            x = _layer_norm(x + inner @ w2 + b2, n2)
        return matvec(self.items, x[-1])

    @property
    def nbytes(self) -> int:
        """What a server holds for this source, in bytes."""
        return sum(a.nbytes for a in self.arrays.values())

    def save(self, path: Path) -> None:
        """An .npz of the arrays and ``meta`` (as JSON), nothing pickled: ``load`` reads it
        without running code. Written to a file of its own and renamed, so a reader (another
        process) sees the whole file or none."""
        meta = {**self.meta, "format": FORMAT}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as f:  # a file object: np.savez would append ".npz" to a name
                np.savez(f, meta=np.array(json.dumps(meta)), **self.arrays)  # type: ignore[arg-type]
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> NumpySASRec:
        """The model ``save`` wrote; ``ValueError`` (or ``OSError``) for a damaged file. The
        zip's checksums cover every array (a flipped byte fails the read)."""
        try:
            # Opened here: np.load leaves a file it opened itself open when it is no zip.
            with path.open("rb") as file, np.load(file, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (zipfile.BadZipFile, EOFError) as exc:  # truncated, or a checksum failed
            raise ValueError(f"{path.name}: damaged ({exc})") from exc
        if "meta" not in arrays:
            raise ValueError(f"{path.name}: no metadata")
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path.name}: format {meta.get('format')!r}, expected {FORMAT!r}")
        if any(a.dtype != np.float32 for a in arrays.values()):
            raise ValueError(f"{path.name}: arrays must be float32")
        try:
            return cls(arrays, meta)
        except KeyError as exc:
            raise ValueError(f"{path.name}: {exc} missing") from exc


def _layer_norm(x: Floats, norm: _Norm) -> Floats:
    weight, bias, eps = norm
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Floats = (x - mean) / np.sqrt(var + eps) * weight + bias
    return out


__all__ = ["FORMAT", "LAYER_ARRAYS", "NumpySASRec"]
