"""Fusion lab: the hybrid's sources as users × items matrices, for minute-long experiments.

``shopwise evaluate`` scores one user at a time through the serving code and takes ~19 min;
trying a fusion idea that way costs a run each. Here every source of the hybrid is one
matrix product over all users of a split (content, EASE+text, transitions, popularity;
``rules`` is left out, validation gives it weight 0), so a weighting is scored in a second
and a second stage trains in minutes. ``check`` compares the matrices with
``BlendStrategy.parts`` (the serving code) for a sample of users, so the lab cannot drift
from what serves. Only validation targets are read: nothing here may tune on test.

- ``blend``: the report's hybrid weights on validation (0.1067 at the time of writing).
- ``extras``: each extra collaborative source added to the blend on a small weight grid.
- ``second-stage``: a learned ranker over the union of the sources' top candidates.
  Training queries come from the validation histories themselves: each history cut by its
  last k items (k = 1…5), sources fitted on the cut histories, the k-th last item as the
  target; the ranker is then scored on the validation targets with sources fitted on the
  full validation histories. LightGBM's lambdarank when it is installed (it is not a
  project dependency), else scikit-learn's gradient boosting on a binary target.

- ``sasrec``, ``sasrec-tune``, ``sasrec-more``, ``zscore``: SASRec's next-item scores as a
  sixth source (the model the evaluation trains, read from its cache). Its logits turned
  into exp((logit − best) / T) (T = 2), min–max or reciprocal-rank scores; the items' text
  added to the ID embeddings (``text="add"``) or as their starting point (``"init"``).
  Validation NDCG@10, the hybrid 0.1067 without it ("fixed": the hybrid's weights, the
  SASRec weight on a grid; "re-chosen": every weight by coordinate search):

  | SASRec                          | alone  | + hybrid, fixed | re-chosen              |
  | ------------------------------- | ------ | --------------- | ---------------------- |
  | RecBole's (IDs only)            | 0.0736 | 0.1075          |                        |
  | text as initial embeddings      | 0.0774 | 0.1075          |                        |
  | text added (kept)               | 0.0819 | 0.1079          | 0.1084 (content 0.4)   |
  | text added, ≤30 epochs, pat. 2  | 0.0819 | 0.1079          |                        |
  | text added, seed 8              | 0.0811 | 0.1080 (c 0.4)  |                        |
  | text added, seeds 7+8 averaged  | 0.0855 | 0.1084 (c 0.4)  |                        |
  | text added, dropout 0.3         | 0.0825 | 0.1078 (c 0.4)  |                        |
  | text added, hidden 128          | 0.0839 | 0.1082 (c 0.4)  |                        |
  | text added, hidden 128, ff 512  | 0.0829 | 0.1085 (c 0.4)  |                        |
  | all sources z-scored per user   |        |                 | 0.1083 (0.1063 w/o it) |

  Min–max 0.1075–0.1080, reciprocal rank 0.1070–0.1072: T = 2 is kept. A SASRec made much
  stronger alone (0.0736 → 0.0855) moves the blend by 0.0005: what it knows beyond EASE +
  text is small on these short histories. ``recent-popularity`` (popularity among each
  history's last 1 or 3 items, a stand-in for "lately"): 0.1066 / 0.1069, no gain.
  ``shopwise evaluate`` with the kept source (cold, shared machine, 19.2 min): validation
  0.1084, test 0.1111 (was 0.1105).

Run: ``python -m bench.fusion_lab blend`` (``check``, ``extras``, ``second-stage``,
``signals``, ``signals-cf``, ``signals-tune``, ``signals-more``; one per ``COMMANDS`` key), with
``--dataset`` the RecBole folder. Item vectors come from the evaluation's cache (``--cache``).

Measured on Scientific validation (the hybrid: 0.1067), none reaching the 0.111 the test
target needs:

- ``extras``: EASE from the newest item only 0.1065, cosine to the newest item 0.1070, EASE
  λ=300 / 3000 without text 0.1065 / 0.1066, RP3beta β=0.3 / 0.6 0.1072 / 0.1073.
- Weights per history length (2 to 5 buckets, the hybrid's grid in each): 0.1074 at best
  when chosen on all users; chosen on half the users and scored on the other half, no gain.
- ``second-stage`` (LightGBM 4.7 lambdarank, 7,822 training queries): 0.1085 / 0.1086 /
  0.1091 / 0.1092 / 0.1093 at 200 / 400 / 600 / 800 / 1,000 trees (13 min on a loaded
  machine). Adding half the validation users as training queries and scoring the other
  half (two folds): 0.1093. scikit-learn's boosting on a binary target: 0.1084 at best.
  About +0.0025, a quarter of what a two-stage design usually adds: with one short history
  per user the linear blend of max-scaled sources already sits near what these features
  can tell apart.

Round 2 (issue 16), on the hybrid with SASRec+text (validation 0.1084; the test target 0.115
needs ~0.1120 here). ``second-stage-next``: the ranker above with NEXT_FEATURES (SASRec's
score, its log and rank, cosine to the history's mean vector, mean cosine to the history)
beside FEATURES, SASRec's top 20 among the candidates (the target is a candidate for 34.5%
of the users) and the six-source hybrid as "blend" (re-ranked alone: 0.1084, so the
candidates lose nothing). Each cut's SASRec trained on the cut histories with early stopping
on the held items (held-item NDCG@10 0.081 / 0.070 / 0.068 / 0.060 / 0.051 for k = 1…5):
the validation SASRec trained on every cut's target, and would look better on the training
queries than on the scored ones. 8,678 cut queries. LightGBM 4.7, the lab's ranker (7
leaves, 0.03, L2 10), validation NDCG@10 at 200 / 400 / 600 / 800 / 1,000 trees (each fit
6–14 min on the loaded machine):

  | protocol                                      | 200    | 400    | 600    | 800    | 1,000  |
  | --------------------------------------------- | ------ | ------ | ------ | ------ | ------ |
  | (a) cut queries, all users scored             | 0.1104 | 0.1105 | 0.1104 | 0.1103 | 0.1106 |
  | (a) without NEXT_FEATURES (SASRec in "blend") | 0.1099 | 0.1098 | 0.1101 | 0.1101 | 0.1098 |
  | (a) 15 leaves, 100 per leaf                   | 0.1104 | 0.1100 | 0.1097 | 0.1098 | 0.1092 |
  | (b) two folds: cuts + other fold's queries    | 0.1105 | 0.1103 | 0.1103 | 0.1106 | 0.1108 |
  | (c) two folds: other fold's queries only      | 0.1090 | 0.1086 | 0.1079 | 0.1070 | 0.1069 |

  ``python -m bench.fusion_lab second-stage-next`` (a, b, c; 56 min on the loaded machine,
  features 16 min of it), ``second-stage-next-ablation`` (the rows without NEXT_FEATURES and
  with 15 leaves; the 15-leaf row was run on its own, ``protocols(..., protocols="a")``).
  (b) 0.1108 at 1,000 trees, (a) 0.1106: +0.0021–0.0024 over the blend. SASRec's features
  add ~0.0005 of it, the rest is what round 1's second stage already found. (c) has ~1,460
  training queries per fold (validation users whose target is a candidate) and overfits
  after 200 trees: the cut queries are what the ranker learns from. Short of 0.1120 in
  every protocol; the 15-leaf ranker only overfits sooner.
- ``rank-blend``: every personal source as a reciprocal rank in the hybrid's weights 0.1051
  (k = 10) / 0.1018 (k = 60); the hybrid plus w × the sources' reciprocal-rank fusion 0.1083
  at best (k = 10, w = 0.4; 0.1076–0.1083 over w 0.1–0.8, k 10 and 60). Dead end: the
  max-scaled scores carry how far apart candidates are, ranks throw it away.
- Training queries "from the train split": its 34,101 rows are exactly the prefixes of the
  validation histories, i.e. cuts k = 1…len − 1; cuts 1…5 hold 27,406 of them (80%), the
  rest are early prefixes of the few long histories. Not run separately.

Round 3 (issue 16): information the six sources do not use yet, on validation only, against
the hybrid with SASRec+text (HYBRID_NEXT, 0.1084; ~0.1125 needed). ``signals``: each new
source added to the hybrid with its weights fixed, the new weight on 0.02–0.5 ("alone": the
source by itself):

  | new source                                                 | alone  | + hybrid (w)  |
  | ---------------------------------------------------------- | ------ | ------------- |
  | TF-IDF cosine (sublinear tf, part numbers one token)       | 0.0716 | 0.1082 (0.02) |
  |   the same, each item's 50 nearest only                    | 0.0697 | 0.1082 (0.02) |
  |   the same, from the newest item only                      | 0.0669 | 0.1083 (0.1)  |
  | BM25 (an item's terms as the query, k1 1.2, b 0.75)        | 0.0751 | 0.1085 (0.1)  |
  |   the same, each item's 50 nearest only                    | 0.0740 | 0.1083 (0.1)  |
  |   the same, from the newest item only                      | 0.0731 | 0.1081 (0.1)  |
  | brand affinity (recency-weighted share of the history)     | ties   | 0.1084 (0.02) |
  | leaf-category affinity (the same over the category path)   | ties   | 0.1080 (0.02) |
  | co-occurrence up to 10 steps after, weight 1/gap           | 0.0781 | 0.1082 (0.02) |
  | co-occurrence up to 10 steps either way, 1/gap             | 0.0876 | 0.1083 (0.02) |
  | co-occurrence up to 3 steps either way, 1/gap              | 0.0876 | 0.1083 (0.02) |
  | co-occurrence up to 50 steps either way, gap^-0.5          | 0.0882 | 0.1083 (0.02) |
  | transitions backwards (what precedes the user's items)     | 0.0730 | 0.1084 (0.02) |
  | user-kNN (idf-weighted decayed histories' cosine), k 50    | 0.0886 | 0.1085 (0.05) |
  | user-kNN, k 200                                            | 0.0912 | 0.1086 (0.2)  |
  | GRU4Rec next-item scores (IDs, 16 epochs, still rising)    | 0.0496 | 0.1088 (0.1)  |

  Brand and leaf category give every item of a brand the same score, and ``target_ranks``
  counts ties in the target's favour, so their "alone" figures (0.19 / 0.16) mean nothing;
  in the blend the other sources break the ties. GRU4Rec's 0.1088 is a lone point (0.1082 at
  0.05 and at 0.2): noise. ``signals-cf``: the side information inside EASE, as the MiniLM
  Gram already is (XᵀX + 1000·EEᵀ + β·G as ``cf``), for β 1…300: every G lowers the hybrid —
  TF-IDF 0.1080 / 0.1081 / 0.1058 at β 1 / 3 / 10, same-brand 0.1082 / 0.1070 / 0.1042,
  same-leaf 0.1071 / 0.1050 / 0.1009, TF-IDF instead of MiniLM 0.0973 at best; MiniLM alone
  stays best (0.1084). ``signals-tune``: every weight re-chosen by coordinate search with
  BM25, brand and two-way co-occurrence beside the six sources: 0.1091 (content 0.2, cf 0.8,
  popularity 0.2, sequence 0.05, next_item 0.3, bm25 0.1, brand 0.1, co-occurrence 0.05)
  against 0.1083 re-chosen without them. Chosen on half the users and scored on the other
  half: −0.0002 and +0.0010 (one extra at a time: BM25 −0.0006 / +0.0007, brand +0.0007 /
  +0.0014, co-occurrence +0.0005 / −0.0014). Not integrated: +0.0007 at most, under half
  of the +0.0016 that 0.1100 needs, and within the fold-to-fold spread. Exact brand and
  part-number tokens, the category path, longer-range or backward co-occurrence, user
  neighbourhoods and a second sequential model add next to nothing to EASE over the
  text-augmented Gram plus SASRec+text, though most of them rank well alone. ``signals`` 4 min,
  ``signals-cf`` 4–7 min, ``signals-tune`` 4 min, ``signals-more`` 2 min (the GRU4Rec fit 1
  min), SASRec+text from the evaluation's cache (its fit ~2 min when cold), loaded machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from backend.recommender.cf import ease_weights, item_gram, transition_matrix
from backend.recommender.evaluation.dataset import LeaveOneOutData, load

if TYPE_CHECKING:  # torch loads only for the commands that train a sequential model
    from backend.recommender.sequential import GRU4Rec, SASRec, SeqParams

Matrix = npt.NDArray[np.float32]
# The report's chosen hybrid (bench/EVALUATION.md): weights and recency decay.
HYBRID = {"content": 0.3, "cf": 0.7, "popularity": 0.2, "sequence": 0.1}
DECAY, SEQUENCE_DECAY, SEQUENCE_LAST, MAX_HISTORY = 0.85, 0.5, 5, 50
EASE_LAMBDA, TEXT_ALPHA = 30.0, 1000.0


def newest_first(history: Sequence[int]) -> list[int]:
    """Distinct items, newest first, as ``user_history`` orders them."""
    return list(dict.fromkeys(reversed(history)))[:MAX_HISTORY]


def weighted(
    histories: Sequence[Sequence[int]], n: int, decay: float, last: int | None = None
) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for u, h in enumerate(histories):
        for p, i in enumerate(newest_first(h)[:last]):
            rows.append(u)
            cols.append(i)
            vals.append(decay**p)
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(histories), n), dtype=np.float64)


def normalise(scores: Matrix, blocked: npt.NDArray[np.bool_]) -> Matrix:
    """Row-wise ``sources.normalise``: the best allowed candidate scores 1."""
    top = np.where(blocked, 0.0, np.abs(scores)).max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return (scores / top).astype(np.float32)


class Sources:
    """Every source of the hybrid for one set of histories, raw and normalised."""

    def __init__(self, histories: Sequence[Sequence[int]], n: int, vectors: Matrix) -> None:
        self.histories = histories
        binary = weighted(histories, n, 1.0)
        self.blocked = binary.toarray() > 0
        self.gram = item_gram(binary)
        self.counts = np.asarray(binary.sum(axis=0)).ravel()
        e = vectors.astype(np.float64)
        self.ease = ease_weights(
            None, lam=EASE_LAMBDA, gram=self.gram, text_gram=e @ e.T, content_alpha=TEXT_ALPHA
        )
        self.transitions = transition_matrix(histories, n)
        decayed = weighted(histories, n, DECAY)
        profile = np.asarray(decayed @ vectors)
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)
        # The snapshot's popularity counts every interaction, a repeated item each time.
        every = np.fromiter((i for h in histories for i in h), dtype=np.int64)
        logs = np.log1p(np.bincount(every, minlength=n).astype(np.float64))
        recent = weighted(histories, n, SEQUENCE_DECAY, SEQUENCE_LAST)
        self.raw: dict[str, Matrix] = {
            "content": (profile @ vectors.T).astype(np.float32),
            "cf": np.asarray(decayed @ self.ease, dtype=np.float32),
            "sequence": np.asarray((recent @ self.transitions).toarray(), dtype=np.float32),
            "popularity": np.tile((logs / logs.max()).astype(np.float32), (len(histories), 1)),
        }
        self.norm = {k: normalise(v, self.blocked) for k, v in self.raw.items()}

    def blend(self, weights: dict[str, float], rows: slice = slice(None)) -> Matrix:
        parts = [w * self.norm[k][rows] for k, w in weights.items() if w]
        return np.sum(parts, axis=0)


def target_ranks(scores: Matrix, blocked: npt.NDArray[np.bool_], targets: npt.NDArray[np.int64]):
    """0-based rank of each row's target among its allowed items (ties count in its favour,
    as ``tune_hybrid`` counts them)."""
    s = np.where(blocked, -np.inf, scores)
    t = s[np.arange(len(s)), targets]
    return np.where(np.isfinite(t), (s > t[:, None]).sum(axis=1), 1 << 30)


def ndcg10(ranks: npt.NDArray[np.int64]) -> float:
    return float(np.where(ranks < 10, 1.0 / np.log2(ranks + 2.0), 0.0).mean())


def blend_ndcg(src: Sources, weights: dict[str, float], targets: Sequence[int]) -> float:
    t = np.asarray(targets)
    ranks = [
        target_ranks(
            src.blend(weights, slice(a, a + 2048)), src.blocked[a : a + 2048], t[a : a + 2048]
        )
        for a in range(0, len(t), 2048)
    ]
    return ndcg10(np.concatenate(ranks))


# --- the second stage ------------------------------------------------------------------------
FEATURES = (
    "cf", "content", "sequence", "cf_raw", "content_raw", "sequence_raw", "blend",
    "rank_blend", "rank_cf", "rank_content", "rank_sequence", "log_popularity",
    "history_length", "cosine_last", "cosine_max", "ease_from_last", "transition_from_last",
    "transition_to_last", "co_count_last", "same_category_last", "same_category_share",
)  # fmt: skip


# With SASRec's next-item source: its max-scaled score exp((logit − best) / 2), that score's
# log (the logit's distance from the user's best), its rank, and the candidate's text cosine to
# the plain mean of the history's vectors and the mean of its cosines to them.
NEXT_FEATURES = (
    "next_item", "next_item_log", "rank_next_item", "cosine_history_mean", "cosine_mean",
)  # fmt: skip


def row_ranks(scores: Matrix, blocked: npt.NDArray[np.bool_]) -> npt.NDArray[np.int32]:
    order = np.argsort(-np.where(blocked, -np.inf, scores), axis=1, kind="stable")
    ranks = np.empty(order.shape, dtype=np.int32)
    np.put_along_axis(ranks, order, np.arange(order.shape[1], dtype=np.int32)[None, :], axis=1)
    return ranks


def candidates(
    src: Sources,
    blended: Matrix,
    k_blend: int = 100,
    k_each: int = 20,
    personal: Sequence[str] = ("cf", "content", "sequence"),
):
    """Per user: the blend's top ``k_blend`` and each personal source's top ``k_each``."""
    tops = [np.argpartition(-np.where(src.blocked, -np.inf, blended), k_blend, axis=1)[:, :k_blend]]
    for key in personal:
        s = np.where(src.blocked, -np.inf, src.norm[key])
        tops.append(np.argpartition(-s, k_each, axis=1)[:, :k_each])
    union = np.concatenate(tops, axis=1)
    return [
        np.setdiff1d(np.unique(row), np.flatnonzero(src.blocked[u])) for u, row in enumerate(union)
    ]


def features(
    src: Sources,
    vectors: Matrix,
    categories: npt.NDArray[np.int64],
    weights: dict[str, float] = HYBRID,
):
    """(rows × FEATURES, group sizes, candidate items per user) for every user; with a
    ``next_item`` source in ``src`` the rows carry NEXT_FEATURES after FEATURES, its top
    items join the candidates and "blend" is the blend of ``weights``."""
    blended = src.blend(weights)
    nxt = "next_item" in src.norm
    personal = ("cf", "content", "sequence", "next_item") if nxt else ("cf", "content", "sequence")
    cands = candidates(src, blended, personal=personal)
    ranks = {k: row_ranks(src.norm[k], src.blocked) for k in ("cf", "content", "sequence")}
    ranks["blend"] = row_ranks(blended, src.blocked)
    if nxt:
        ranks["next_item"] = row_ranks(src.norm["next_item"], src.blocked)
    forward, backward = src.transitions.tocsr(), src.transitions.T.tocsr()
    log_pop = np.log1p(src.counts)
    rows = []
    for u, c in enumerate(cands):
        past = newest_first(src.histories[u])
        last = past[0]
        cos = vectors[c] @ vectors[past].T
        more = []
        if nxt:
            mean = vectors[past].mean(axis=0)
            more = [
                src.norm["next_item"][u, c], np.log(np.maximum(src.norm["next_item"][u, c], 1e-30)),
                np.log1p(ranks["next_item"][u, c]),
                vectors[c] @ (mean / max(float(np.linalg.norm(mean)), 1e-12)), cos.mean(axis=1),
            ]  # fmt: skip
        rows.append(
            np.column_stack(
                [
                    src.norm["cf"][u, c], src.norm["content"][u, c], src.norm["sequence"][u, c],
                    src.raw["cf"][u, c], src.raw["content"][u, c], src.raw["sequence"][u, c],
                    blended[u, c], np.log1p(ranks["blend"][u, c]), np.log1p(ranks["cf"][u, c]),
                    np.log1p(ranks["content"][u, c]), np.log1p(ranks["sequence"][u, c]),
                    log_pop[c], np.full(len(c), len(past)), cos[:, 0], cos.max(axis=1),
                    src.ease[last, c], forward[last, c].toarray().ravel(),
                    backward[last, c].toarray().ravel(), src.gram[last, c],
                    categories[c] == categories[last],
                    (categories[c][:, None] == categories[past][None, :]).mean(axis=1),
                    *more,
                ]
            ).astype(np.float32)
        )  # fmt: skip
    return np.concatenate(rows), np.array([len(c) for c in cands]), cands


def grouped_gains(scores, groups, labels) -> npt.NDArray[np.float64]:
    """Each user's NDCG@10; a user whose target is not a candidate counts 0."""
    out, start = [], 0
    for size in groups:
        s, y = scores[start : start + size], labels[start : start + size]
        start += size
        rank = int((s > s[y > 0][0]).sum()) if y.any() else 1 << 30
        out.append(1.0 / np.log2(rank + 2.0) if rank < 10 else 0.0)
    return np.asarray(out)


def grouped_ndcg(scores, groups, labels) -> float:
    """NDCG@10 over users; a user whose target is not a candidate counts 0."""
    return float(grouped_gains(scores, groups, labels).mean())


def some_users(x, groups, labels, users: npt.NDArray[np.int64]):
    """The rows of ``users`` (indexes into ``groups``), in that order."""
    starts = np.concatenate([[0], np.cumsum(groups)[:-1]])
    rows = np.concatenate([np.arange(starts[u], starts[u] + groups[u]) for u in users])
    return x[rows], groups[users], labels[rows]


def with_target(x, groups, labels):
    """Only the users whose target is a candidate: the others teach a ranker nothing."""
    starts = np.concatenate([[0], np.cumsum(groups)[:-1]])
    keep = np.zeros(len(labels), dtype=bool)
    for s, size in zip(starts, groups, strict=True):
        keep[s : s + size] = labels[s : s + size].any()
    sizes = [size for s, size in zip(starts, groups, strict=True) if labels[s : s + size].any()]
    return x[keep], np.array(sizes), labels[keep]


# --- commands --------------------------------------------------------------------------------
def cmd_blend(data: LeaveOneOutData, vectors: Matrix, _cache: Path) -> None:
    src = Sources(data.valid.histories, data.n_items, vectors)
    print(f"hybrid {HYBRID}: validation NDCG@10 {blend_ndcg(src, HYBRID, data.valid.targets):.4f}")
    for key in src.norm:
        print(f"  {key} alone: {blend_ndcg(src, {key: 1.0}, data.valid.targets):.4f}")


def cmd_check(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """The matrices equal ``BlendStrategy.parts`` (the serving code) on 200 users, the
    ``next_item`` source (SASRec+text, one user at a time there) included."""
    from backend.recommender import sequential
    from backend.recommender.cf import CFParams
    from backend.recommender.evaluation.context import SplitContext
    from backend.recommender.strategies import BlendConfig, BlendStrategy

    src = Sources(data.valid.histories, data.n_items, vectors)
    ctx = SplitContext(data, data.valid, vectors)
    store = ctx.models(
        CFParams(ease_lambda=EASE_LAMBDA, ease_content_alpha=TEXT_ALPHA),
        kinds=("ease_content", "transitions"),
    )
    model, params = valid_sasrec(data, cache, vectors, text="add")
    models = store.current()
    assert models is not None
    logits = sequential.scores(model, data.valid.histories, params)
    src.norm["next_item"] = as_source(logits, src.blocked, "softmax2")
    models.next_item = sequential.NextItemScorer(model, params)
    weights = {**HYBRID, "next_item": 0.2}
    probe = BlendStrategy("hybrid", BlendConfig(weights=weights, recency_decay=DECAY), store)
    worst, where = 0.0, ""
    for u in np.random.default_rng(0).choice(len(ctx.requests), 200, replace=False):
        found = probe.parts(ctx.snapshot, ctx.requests[u])
        assert found is not None
        parts, blocked = found
        assert np.array_equal(blocked, src.blocked[u])
        for key, values in parts.items():
            diff = float(np.abs(values[~blocked] - src.norm[key][u, ~blocked]).max())
            if diff > worst:
                worst, where = diff, f"{key}, user {u}"
    print(f"largest difference from BlendStrategy.parts over 200 users: {worst:.2e} ({where})")
    assert worst < 1e-4, "the lab no longer matches the serving code"


def cmd_extras(data: LeaveOneOutData, vectors: Matrix, _cache: Path) -> None:
    """Extra collaborative sources beside the hybrid's, each on a small weight grid."""
    targets = data.valid.targets
    src = Sources(data.valid.histories, data.n_items, vectors)
    decayed = weighted(data.valid.histories, data.n_items, DECAY)
    binary = weighted(data.valid.histories, data.n_items, 1.0)
    binary.data[:] = 1.0
    extra: dict[str, Matrix] = {
        "ease-from-last": np.asarray(
            weighted(data.valid.histories, data.n_items, 1.0, 1) @ src.ease, dtype=np.float32
        ),
        "content-of-last": (
            vectors[[newest_first(h)[0] for h in data.valid.histories]] @ vectors.T
        ).astype(np.float32),
    }
    for lam in (300.0, 3000.0):
        extra[f"ease-lambda{lam:g}"] = np.asarray(
            decayed @ ease_weights(None, lam=lam, gram=src.gram), dtype=np.float32
        )
    # RP3beta: two-step random walk item → user → item, damped by the target's popularity.
    pop = np.maximum(src.counts, 1.0)
    walk = (sp.diags(1 / pop) @ binary.T) @ (
        sp.diags(1 / np.maximum(np.asarray(binary.sum(axis=1)).ravel(), 1)) @ binary
    )
    for beta in (0.3, 0.6):
        w = walk.toarray() / np.power(pop, beta)[None, :]
        np.fill_diagonal(w, 0.0)
        extra[f"rp3beta{beta:g}"] = np.asarray(decayed @ w, dtype=np.float32)
    for key, values in extra.items():
        src.norm[key] = normalise(values, src.blocked)
        best = max(
            (blend_ndcg(src, {**HYBRID, "cf": cf, key: w}, targets), w, cf)
            for w in (0.05, 0.1, 0.2, 0.35)
            for cf in (0.7, 0.55)
        )
        alone = blend_ndcg(src, {key: 1.0}, targets)
        print(
            f"{key}: alone {alone:.4f}; in the blend {best[0]:.4f} (weight {best[1]}, cf {best[2]})"
        )


def category_codes(data: LeaveOneOutData) -> npt.NDArray[np.int64]:
    names = sorted({p.category for p in data.products})
    return np.array([names.index(p.category) for p in data.products])


def validation_cuts(data: LeaveOneOutData, ks: Sequence[int]):
    """For each k: the validation histories longer than k cut by their last k items, and the
    k-th last item of each (the training queries of a second stage)."""
    for k in ks:
        users = [u for u, h in enumerate(data.valid.histories) if len(h) > k]
        cut = [data.valid.histories[u][:-k] for u in users]
        held = [data.valid.histories[u][-k] for u in users]
        yield k, cut, held


def cached_features(
    path: Path,
    name: str,
    sources: Callable[[], Sources],
    targets: Sequence[int],
    vectors: Matrix,
    categories: npt.NDArray[np.int64],
    weights: dict[str, float] = HYBRID,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, group sizes, labels: the candidate is the user's target) for one set of
    queries, read from ``path`` when it was built before."""
    if path.exists():
        z = np.load(path)
        return z["x"], z["groups"], z["labels"]
    started = time.perf_counter()
    x, groups, cands = features(sources(), vectors, categories, weights)
    labels = np.concatenate([c == t for c, t in zip(cands, targets, strict=True)]).astype(
        np.float32
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, groups=groups, labels=labels)
    print(f"  {name}: {len(groups)} users, features in {time.perf_counter() - started:.0f} s")
    return x, groups, labels


def cmd_second_stage(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    categories = category_codes(data)
    n = data.n_items

    def built(name: str, histories, targets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        path = cache / f"fusion-{data.name}-{name}.npz"
        return cached_features(
            path, name, lambda: Sources(histories, n, vectors), targets, vectors, categories
        )

    train = [
        with_target(*built(f"cut{k}", cut, held))
        for k, cut, held in validation_cuts(data, range(1, 6))
    ]
    x, groups, labels = (np.concatenate([t[i] for t in train]) for i in range(3))
    vx, vg, vy = built("valid", data.valid.histories, data.valid.targets)
    print(f"training queries: {len(groups)}; validation users: {len(vg)}")
    print(
        f"  the blend alone, re-ranked: {grouped_ndcg(vx[:, FEATURES.index('blend')], vg, vy):.4f}"
    )
    started = time.perf_counter()
    rank = _fit_ranker(x, groups, labels)
    for trees in (200, 400, 600, 800, 1000):
        print(f"  second stage, {trees} trees: {grouped_ndcg(rank(vx, trees), vg, vy):.4f}")
    print(f"trained and scored in {time.perf_counter() - started:.0f} s")


# The hybrid as ``shopwise evaluate`` chooses it now (bench/EVALUATION.md), SASRec+text in.
HYBRID_NEXT = {**HYBRID, "content": 0.4, "cf": 0.6, "next_item": 0.2}
CUTS = range(1, 6)  # training queries: each validation history cut by its last k items
TREES = (200, 400, 600, 800, 1000)


def cut_sasrec_scores(
    data: LeaveOneOutData, cache: Path, vectors: Matrix, name: str, cut, held
) -> Matrix:
    """SASRec+text trained as ``valid_sasrec`` trains it, on cut histories with early stopping
    on their held-out items: the model the validation queries see never trained on their
    targets, so the training queries' model must not have trained on theirs either."""
    from backend.recommender import sequential

    params = sequential.SeqParams(architecture="sasrec", max_epochs=16, patience=1, text="add")
    model, info = sequential.cached_fit(
        cache / "sequential", f"{data.name}-{name}", cut, data.n_items, params,
        valid=(cut, held), text=vectors, say=print,
    )  # fmt: skip
    print(
        f"sasrec on {name}: epochs {info.epochs}, NDCG@10 on the held items {info.valid_ndcg10}, "
        f"{'cached' if info.cached else f'{info.seconds:.0f} s'}"
    )
    return sequential.scores(model, cut, params)


def next_stage_data(data: LeaveOneOutData, vectors: Matrix, cache: Path):
    """(validation features, groups, labels), (the cut queries' ones, users whose held item
    is a candidate), built once and cached as ``fusion-next-*.npz``."""
    categories = category_codes(data)
    n = data.n_items

    def built(name: str, histories, targets, logits: Callable[[], Matrix]):
        def sources() -> Sources:
            src = Sources(histories, n, vectors)
            src.norm["next_item"] = as_source(logits(), src.blocked, "softmax2")
            return src

        path = cache / f"fusion-next-{data.name}-{name}.npz"
        return cached_features(path, name, sources, targets, vectors, categories, HYBRID_NEXT)

    valid = built(
        "valid", data.valid.histories, data.valid.targets,
        lambda: sasrec_scores(data, cache, vectors, text="add"),
    )  # fmt: skip
    train = []
    for k, cut, held in validation_cuts(data, CUTS):
        train.append(
            with_target(
                *built(
                    f"cut{k}", cut, held,
                    lambda cut=cut, held=held, k=k: cut_sasrec_scores(
                        data, cache, vectors, f"cut{k}", cut, held
                    ),
                )
            )
        )  # fmt: skip
    return valid, tuple(np.concatenate([t[i] for t in train]) for i in range(3))


def protocols(valid, cuts, fit=None, protocols: str = "abc") -> None:
    """The three protocols of ``second-stage-next``: validation NDCG@10 per tree count."""
    fit = fit or _fit_ranker
    vx, vg, vy = valid
    x, groups, labels = cuts

    def report(label: str, gains: dict[int, npt.NDArray[np.float64]], started: float) -> None:
        scored = ", ".join(f"{t}: {g.mean():.4f}" for t, g in gains.items())
        print(f"  {label} (trees {scored}) in {time.perf_counter() - started:.0f} s", flush=True)

    if "a" in protocols:
        started = time.perf_counter()
        rank = fit(x, groups, labels)
        report("(a) cut queries", {t: grouped_gains(rank(vx, t), vg, vy) for t in TREES}, started)
    folds = np.array_split(np.random.default_rng(0).permutation(len(vg)), 2)
    for label, with_cuts in (("(b) cuts + other fold", True), ("(c) other fold only", False)):
        if label[1] not in protocols:
            continue
        started = time.perf_counter()
        gains = {t: np.zeros(len(vg)) for t in TREES}
        for f, scored_users in enumerate(folds):
            fx, fg, fy = with_target(*some_users(vx, vg, vy, np.sort(folds[1 - f])))
            if with_cuts:
                fx, fg, fy = (np.concatenate(p) for p in ((x, fx), (groups, fg), (labels, fy)))
            rank = fit(fx, fg, fy)
            sx, sg, sy = some_users(vx, vg, vy, scored_users)
            for t in TREES:
                gains[t][scored_users] = grouped_gains(rank(sx, t), sg, sy)
        report(label, gains, started)


def cmd_second_stage_next(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """``second-stage`` with SASRec+text's next-item score, its rank and two more text
    cosines as features (NEXT_FEATURES), its top 20 among the candidates and the current
    six-source hybrid as the "blend" feature. Each cut's SASRec is trained on the cut
    histories (``cut_sasrec_scores``). Three protocols: (a) train on the cut queries, score
    every validation user; (b) two folds of the validation users, each scored by a ranker
    trained on the cut queries plus the other fold's validation queries; (c) the same two
    folds with the validation queries alone (no cut queries: the training and scored queries
    then come from one SASRec and one distribution)."""
    valid, cuts = next_stage_data(data, vectors, cache)
    vx, vg, vy = valid
    starts = np.cumsum(vg) - vg
    recall = float(np.mean([vy[a : a + g].any() for a, g in zip(starts, vg, strict=True)]))
    blend_col = FEATURES.index("blend")
    print(f"validation users: {len(vg)}, target among the candidates: {recall:.3f}")
    print(f"  the six-source blend alone, re-ranked: {grouped_ndcg(vx[:, blend_col], vg, vy):.4f}")
    print(f"training queries from the cuts: {len(cuts[1])}")
    protocols(valid, cuts)


def cmd_second_stage_next_ablation(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """``second-stage-next`` without the NEXT_FEATURES columns (what SASRec's features add
    beyond its candidates and the blend), and with a larger ranker (15 leaves)."""
    valid, cuts = next_stage_data(data, vectors, cache)
    keep = len(FEATURES)
    print("without NEXT_FEATURES:")
    protocols((valid[0][:, :keep], *valid[1:]), (cuts[0][:, :keep], *cuts[1:]), protocols="ac")
    print("15 leaves, 100 per leaf:")
    protocols(
        valid,
        cuts,
        fit=lambda x, g, y: _fit_ranker(x, g, y, num_leaves=15, min_child_samples=100),
        protocols="ac",
    )


def _fit_ranker(x, groups, labels, **overrides: object) -> Callable[[np.ndarray, int], np.ndarray]:
    try:
        import lightgbm
    except ImportError:
        from sklearn.ensemble import HistGradientBoostingClassifier

        print("LightGBM is not installed: scikit-learn's gradient boosting, binary target")
        hgb = HistGradientBoostingClassifier(
            max_leaf_nodes=7, learning_rate=0.05, max_iter=1000, l2_regularization=10,
            min_samples_leaf=200, early_stopping=False, random_state=0,
        )  # fmt: skip
        hgb.fit(x, labels)

        def staged(v: np.ndarray, trees: int) -> np.ndarray:
            for i, p in enumerate(hgb.staged_predict_proba(v), 1):
                if i == trees:
                    return p[:, 1]
            raise ValueError(trees)

        return staged
    # Few trees' leaves, strong L2 and row/column sampling: ~8,500 training queries overfit
    # a 31-leaf model within 100 trees.
    settings: dict[str, object] = dict(
        objective="lambdarank", lambdarank_truncation_level=20, num_leaves=7,
        learning_rate=0.03, n_estimators=1000, min_child_samples=200, reg_lambda=10,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, n_jobs=1, verbose=-1,
    )  # fmt: skip
    model = lightgbm.LGBMRanker(**{**settings, **overrides})
    model.fit(x, labels, group=groups)
    return lambda v, trees: model.predict(v, num_iteration=trees)


# --- the sequential model as a source ---------------------------------------------------------
def valid_sasrec(
    data: LeaveOneOutData, cache: Path, vectors: Matrix | None = None, **overrides: object
) -> tuple[SASRec | GRU4Rec, SeqParams]:
    """SASRec trained as the evaluation's baseline row trains it (validation histories,
    early stopping on the validation targets, the same cache), with ``overrides``."""
    from backend.recommender import sequential
    from backend.recommender.evaluation.runner import fit_on_validation

    params = sequential.SeqParams(architecture="sasrec", max_epochs=16, patience=1)
    params = dataclasses.replace(params, **overrides)  # type: ignore[arg-type]
    model, info = fit_on_validation(data, params, cache / "sequential", vectors, say=print)
    print(
        f"sasrec {overrides or 'defaults'}: epochs {info.epochs}, validation NDCG@10 "
        f"{info.valid_ndcg10}, {'cached' if info.cached else f'{info.seconds:.0f} s'}"
    )
    return model, params


def sasrec_scores(
    data: LeaveOneOutData, cache: Path, vectors: Matrix | None = None, **overrides: object
) -> Matrix:
    """SASRec's next-item logits after each validation history (users × items), from the
    model ``valid_sasrec`` trains, so the source costs no second training."""
    from backend.recommender import sequential

    model, params = valid_sasrec(data, cache, vectors, **overrides)
    return sequential.scores(model, data.valid.histories, params)


def as_source(logits: Matrix, blocked: npt.NDArray[np.bool_], how: str) -> Matrix:
    """Logits to a 0–1 source whose best allowed item scores 1."""
    s = np.where(blocked, -np.inf, logits)
    top = s.max(axis=1, keepdims=True)
    if how.startswith("softmax"):  # exp((s - max) / T): the probability relative to the best
        t = float(how.removeprefix("softmax"))
        return np.exp((s - top) / t).astype(np.float32)
    if how == "minmax":
        low = np.where(blocked, np.inf, logits).min(axis=1, keepdims=True)
        return np.where(blocked, 0.0, (logits - low) / np.maximum(top - low, 1e-9)).astype(
            np.float32
        )
    if how.startswith("rank"):  # reciprocal rank, k as in RRF
        k = float(how.removeprefix("rank"))
        ranks = row_ranks(logits, blocked)
        return ((k + 1) / (k + 1 + ranks)).astype(np.float32)
    raise ValueError(how)


def cmd_sasrec(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """SASRec's next-item scores as a sixth source, several scalings, on a weight grid."""
    targets = data.valid.targets
    src = Sources(data.valid.histories, data.n_items, vectors)
    print(f"hybrid alone: {blend_ndcg(src, HYBRID, targets):.4f}")
    for variant in SASREC_VARIANTS:
        logits = sasrec_scores(data, cache, vectors, **variant)
        sasrec_grid(src, logits, targets, ("softmax2", "minmax"))


# What ``sasrec`` trains, one model each (the first is the evaluation's baseline).
SASREC_VARIANTS: list[dict[str, object]] = [
    {"text": "add"},
    {"text": "init"},
    {},
    {"text": "add", "max_epochs": 30, "patience": 2},
]


def sasrec_grid(src: Sources, logits: Matrix, targets: Sequence[int], scalings) -> None:
    for how in scalings:
        src.norm["sasrec"] = as_source(logits, src.blocked, how)
        alone = blend_ndcg(src, {"sasrec": 1.0}, targets)
        scored = {
            w: blend_ndcg(src, {**HYBRID, "sasrec": w}, targets)
            for w in (0.05, 0.1, 0.2, 0.3, 0.5, 0.8)
        }
        best = max(scored, key=lambda w: scored[w])
        grid = ", ".join(f"{w:g}: {v:.4f}" for w, v in scored.items())
        print(f"{how}: alone {alone:.4f}; in the blend best {scored[best]:.4f} at {best} ({grid})")


def cmd_sasrec_tune(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Every weight re-chosen with the sequential source in (coordinate search, as
    ``tune_hybrid``'s grid would choose them), per SASRec variant and scaling."""
    from backend.recommender.evaluation.tuning import coordinate_search

    targets = data.valid.targets
    src = Sources(data.valid.histories, data.n_items, vectors)
    axes = [
        (0.1, 0.2, 0.3, 0.4, 0.5),  # content (cf = 1 - content)
        (0.0, 0.05, 0.1, 0.2, 0.3),  # popularity
        (0.0, 0.05, 0.1, 0.2, 0.4),  # sequence
        (0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0),  # sasrec
    ]

    def weights(point: tuple[float, ...]) -> dict[str, float]:
        c, p, q, s = point
        return {"content": c, "cf": 1 - c, "popularity": p, "sequence": q, "sasrec": s}

    for variant in SASREC_VARIANTS[: int(TUNE_VARIANTS)]:
        logits = sasrec_scores(data, cache, vectors, **variant)
        for how in ("softmax2", "minmax"):
            src.norm["sasrec"] = as_source(logits, src.blocked, how)
            best, seen = coordinate_search(
                axes, lambda point: blend_ndcg(src, weights(point), targets)
            )
            print(f"{variant} {how}: {seen[best]:.4f} at {weights(best)} ({len(seen)} tried)")


TUNE_VARIANTS = 1


def cmd_sasrec_more(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Bigger or differently regularised SASRec+text, and two seeds averaged, each in the
    blend chosen by ``sasrec-tune`` (content 0.4) on a small weight grid."""
    targets = data.valid.targets
    src = Sources(data.valid.histories, data.n_items, vectors)
    blend = {**HYBRID, "content": 0.4, "cf": 0.6}
    print(f"hybrid, content 0.4: {blend_ndcg(src, blend, targets):.4f}")

    def grid(name: str, logits: Matrix) -> None:
        src.norm["sasrec"] = as_source(logits, src.blocked, "softmax2")
        scored = {w: blend_ndcg(src, {**blend, "sasrec": w}, targets) for w in (0.1, 0.2, 0.3, 0.5)}
        best = max(scored, key=lambda w: scored[w])
        print(
            f"{name}: alone {blend_ndcg(src, {'sasrec': 1.0}, targets):.4f}; blend "
            f"{scored[best]:.4f} at {best} ({', '.join(f'{v:.4f}' for v in scored.values())})"
        )

    base = sasrec_scores(data, cache, vectors, text="add")
    other = sasrec_scores(data, cache, vectors, text="add", seed=8)
    grid("text add, seed 8", other)
    grid("text add, seeds 7 + 8 averaged", (base + other) / 2)
    for variant in ({"hidden": 128}, {"dropout": 0.3}, {"hidden": 128, "inner": 512}):
        grid(f"text add {variant}", sasrec_scores(data, cache, vectors, text="add", **variant))


def zscore(scores: Matrix, blocked: npt.NDArray[np.bool_]) -> Matrix:
    """Per user: (score − mean) / std over the allowed items."""
    allowed = ~blocked
    n = allowed.sum(axis=1, keepdims=True)
    mean = np.where(allowed, scores, 0.0).sum(axis=1, keepdims=True) / n
    var = np.where(allowed, (scores - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n
    return ((scores - mean) / np.maximum(np.sqrt(var), 1e-9)).astype(np.float32)


def cmd_zscore(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Every source standardised per user instead of scaled by its best candidate, weights
    re-chosen by coordinate search, with and without SASRec+text."""
    from backend.recommender.evaluation.tuning import coordinate_search

    targets = data.valid.targets
    src = Sources(data.valid.histories, data.n_items, vectors)
    logits = sasrec_scores(data, cache, vectors, text="add")
    src.raw["sasrec"] = logits
    for key in list(src.raw):
        src.norm[key] = zscore(src.raw[key], src.blocked)
    axes = [
        (0.1, 0.2, 0.3, 0.5, 0.8),  # content (cf = 1)
        (0.0, 0.05, 0.1, 0.2, 0.4),  # popularity
        (0.0, 0.05, 0.1, 0.2, 0.4),  # sequence
        (0.0, 0.1, 0.2, 0.4, 0.8),  # sasrec
    ]

    def weights(point: tuple[float, ...]) -> dict[str, float]:
        c, p, q, s = point
        return {"content": c, "cf": 1.0, "popularity": p, "sequence": q, "sasrec": s}

    for label, sasrec_axis in (("without sasrec", (0.0,)), ("with sasrec", axes[3])):
        best, seen = coordinate_search(
            [*axes[:3], sasrec_axis], lambda point: blend_ndcg(src, weights(point), targets)
        )
        print(f"z-scores, {label}: {seen[best]:.4f} at {weights(best)} ({len(seen)} tried)")


def cmd_recent_popularity(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Popularity among the newest items of every history (the files carry no timestamps:
    the end of a history stands in for "lately"), beside or instead of all-time popularity."""
    targets = data.valid.targets
    src = Sources(data.valid.histories, data.n_items, vectors)
    n = data.n_items
    for last in (1, 3):
        tail = np.fromiter((i for h in data.valid.histories for i in h[-last:]), dtype=np.int64)
        logs = np.log1p(np.bincount(tail, minlength=n).astype(np.float64))
        src.norm[f"recent{last}"] = normalise(
            np.tile((logs / logs.max()).astype(np.float32), (len(targets), 1)), src.blocked
        )
        scored = {
            (w, p): blend_ndcg(src, {**HYBRID, "popularity": p, f"recent{last}": w}, targets)
            for w in (0.05, 0.1, 0.2, 0.3)
            for p in (0.0, 0.1, 0.2)
        }
        best = max(scored, key=lambda k: scored[k])
        print(
            f"popularity of each history's last {last}: blend {scored[best]:.4f} at "
            f"(weight, all-time popularity) {best}"
        )


def six_sources(
    data: LeaveOneOutData, vectors: Matrix, cache: Path, *, keep_raw: bool = False
) -> Sources:
    """The validation split's sources with SASRec+text's next-item scores as the sixth (the
    hybrid the round-2 and round-3 experiments start from); the raw matrices are dropped
    unless ``keep_raw`` (they are the memory a wider experiment needs)."""
    src = Sources(data.valid.histories, data.n_items, vectors)
    src.norm["next_item"] = as_source(
        sasrec_scores(data, cache, vectors, text="add"), src.blocked, "softmax2"
    )
    if not keep_raw:
        src.raw.clear()
    return src


def cmd_rank_blend(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Ranks instead of (or beside) max-scaled scores: every personal source as a reciprocal
    rank (k + 1) / (k + 1 + rank) in the current hybrid's weights, and the hybrid plus a
    reciprocal-rank fusion of its personal sources on a small weight grid."""
    targets = data.valid.targets
    src = six_sources(data, vectors, cache, keep_raw=True)
    print(f"hybrid with next_item: {blend_ndcg(src, HYBRID_NEXT, targets):.4f}")
    personal = ("cf", "content", "sequence", "next_item")
    ranks = {key: row_ranks(src.norm[key], src.blocked) for key in personal}
    scores = dict(src.norm)
    for k in (10.0, 60.0):
        for key in personal:
            src.norm[key] = ((k + 1) / (k + 1 + ranks[key])).astype(np.float32)
        alone = blend_ndcg(src, HYBRID_NEXT, targets)
        print(f"every source as a reciprocal rank, k={k:g}: {alone:.4f}")
        src.norm["rrf"] = np.sum([src.norm[key] for key in personal], axis=0) / len(personal)
        src.norm.update({key: scores[key] for key in personal})
        grid = {
            w: blend_ndcg(src, {**HYBRID_NEXT, "rrf": w}, targets) for w in (0.1, 0.2, 0.4, 0.8)
        }
        print(f"  hybrid + w × RRF: {', '.join(f'{w:g}: {v:.4f}' for w, v in grid.items())}")
        del src.norm["rrf"]


# --- round 3: new information (lexical text, brand / leaf category, longer co-occurrence) ----
_TOKEN = r"[a-z0-9]+(?:[-./][a-z0-9]+)*"  # keeps part numbers and sizes whole: dw4524, 4-1/2


def item_terms(data: LeaveOneOutData) -> sp.csr_matrix:
    """Items × terms counts over "title. category. brand tags" (the same fields MiniLM reads)."""
    from sklearn.feature_extraction.text import CountVectorizer

    texts = [f"{p.name} {p.category} {' '.join(p.tags)}" for p in data.products]
    counts = CountVectorizer(lowercase=True, token_pattern=_TOKEN, dtype=np.float64)
    return sp.csr_matrix(counts.fit_transform(texts))


def tfidf_similarity(terms: sp.csr_matrix, how: str = "tfidf") -> Matrix:
    """Item × item lexical similarity, diagonal 0: cosine of sublinear TF-IDF, or BM25 (each
    item's terms as the query, idf-weighted, against every item as a BM25 document)."""
    n_items = terms.shape[0]
    df = np.asarray((terms > 0).sum(axis=0)).ravel()
    if how == "tfidf":
        idf = np.log((1 + n_items) / (1 + df)) + 1
        x = terms.copy()
        x.data = 1 + np.log(x.data)
        x = sp.csr_matrix(x @ sp.diags(idf))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        x = sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-12)) @ x)
        sim = (x @ x.T).toarray()
    else:  # bm25, k1 = 1.2, b = 0.75
        idf = np.log(1 + (n_items - df + 0.5) / (df + 0.5))
        length = np.asarray(terms.sum(axis=1)).ravel()
        x = terms.tocoo()
        k = 1.2 * (0.25 + 0.75 * length[x.row] / length.mean())
        docs = sp.csr_matrix(((x.data * 2.2) / (x.data + k), (x.row, x.col)), shape=terms.shape)
        query = sp.csr_matrix((terms > 0).astype(np.float64) @ sp.diags(idf))
        sim = (query @ docs.T).toarray()
        sim /= np.maximum(sim.diagonal(), 1e-12)[:, None]  # 1 = as close as the item itself
    np.fill_diagonal(sim, 0.0)
    return sim.astype(np.float32)


def keep_top(sim: Matrix, k: int) -> Matrix:
    """Each row's ``k`` largest entries, the rest 0 (item-kNN pruning)."""
    out = np.zeros_like(sim)
    top = np.argpartition(-sim, k, axis=1)[:, :k]
    np.put_along_axis(out, top, np.take_along_axis(sim, top, axis=1), axis=1)
    return out


def attribute_affinity(
    histories: Sequence[Sequence[int]], n: int, codes: npt.NDArray[np.int64], decay: float
) -> Matrix:
    """Per user and item: the recency-weighted share of the user's items that share the
    item's attribute code (brand or leaf category); code −1 matches nothing."""
    onehot = sp.csr_matrix(
        (np.ones(int((codes >= 0).sum())), (np.flatnonzero(codes >= 0), codes[codes >= 0])),
        shape=(n, int(codes.max()) + 1),
    )
    w = weighted(histories, n, decay)
    share = np.asarray((w @ onehot).toarray()) / np.asarray(w.sum(axis=1))
    return np.asarray(share @ onehot.T.toarray(), dtype=np.float32)


def brand_codes(data: LeaveOneOutData) -> npt.NDArray[np.int64]:
    """The brand (the item's tags, as ``dataset.parse_item`` reads "title. path. brand.")."""
    names: dict[str, int] = {}
    codes = []
    for p in data.products:
        words = set(re.findall(r"[a-z0-9]+", p.category.lower()))
        brand = p.tags[0] if p.tags and p.tags[0] not in words else None  # else no brand
        codes.append(names.setdefault(brand, len(names)) if brand else -1)
    return np.array(codes)


def cooccurrence(
    sequences: Sequence[Sequence[int]], n: int, window: int, both: bool, gap_power: float
) -> sp.csr_matrix:
    """C[i, j]: j within ``window`` steps after i (before as well when ``both``), each time
    weighted gap ** −gap_power, rows divided by their total + 1 as ``transition_matrix``."""
    rows, cols, vals = [], [], []
    for seq in sequences:
        s = np.asarray(seq, dtype=np.int64)
        for d in range(1, min(window, len(s) - 1) + 1):
            a, b = s[:-d], s[d:]
            keep = a != b
            pairs = [(a[keep], b[keep])] + ([(b[keep], a[keep])] if both else [])
            for x, y in pairs:
                rows.append(x)
                cols.append(y)
                vals.append(np.full(len(x), d**-gap_power, dtype=np.float32))
    c = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    c.sum_duplicates()
    totals = np.asarray(c.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / (totals + 1.0)) @ c)


def new_signals(data: LeaveOneOutData, histories: Sequence[Sequence[int]]) -> dict[str, Matrix]:
    """Every round-3 candidate source, users × items, raw, for ``histories``."""
    n = data.n_items
    decayed = weighted(histories, n, DECAY)
    recent = weighted(histories, n, SEQUENCE_DECAY, SEQUENCE_LAST)
    last = weighted(histories, n, 1.0, 1)
    terms = item_terms(data)
    out: dict[str, Matrix] = {}
    for how in ("tfidf", "bm25"):
        sim = tfidf_similarity(terms, how)
        out[f"{how}"] = np.asarray(decayed @ sim, dtype=np.float32)
        out[f"{how}-knn50"] = np.asarray(decayed @ keep_top(sim, 50), dtype=np.float32)
        out[f"{how}-last"] = np.asarray(last @ sim, dtype=np.float32)
    out["brand"] = attribute_affinity(histories, n, brand_codes(data), DECAY)
    out["leaf-category"] = attribute_affinity(histories, n, category_codes(data), DECAY)
    for window, both, power in ((10, False, 1.0), (10, True, 1.0), (3, True, 1.0), (50, True, 0.5)):
        c = cooccurrence(histories, n, window, both, power)
        name = f"cooc-w{window}{'-both' if both else ''}-p{power:g}"
        out[name] = np.asarray((recent @ c).toarray(), dtype=np.float32)
    out["back-transitions"] = np.asarray(
        (recent @ transition_matrix([h[::-1] for h in histories], n)).toarray(), dtype=np.float32
    )
    return out


def half_split_gain(src: Sources, key: str, weights, targets: Sequence[int]) -> str:
    """The extra source's weight chosen on the even users, scored on the odd ones (and the
    other way round): whether the gain survives a weight not tuned on the scored users."""
    t = np.asarray(targets)

    def on(rows: npt.NDArray[np.int64], w: float) -> float:
        full = {**weights, key: w}
        s = np.sum([v * src.norm[k][rows] for k, v in full.items() if v], axis=0)
        return ndcg10(target_ranks(s, src.blocked[rows], t[rows]))

    out = []
    for pick, score in ((0, 1), (1, 0)):
        chosen_rows = np.arange(pick, len(t), 2)
        scored_rows = np.arange(score, len(t), 2)
        w = max((0.0, *SIGNAL_WEIGHTS), key=lambda x: on(chosen_rows, x))
        out.append(f"w={w:g}: {on(scored_rows, w) - on(scored_rows, 0.0):+.4f}")
    return "; ".join(out)


SIGNAL_WEIGHTS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def score_each_added(
    src: Sources, extra: dict[str, Matrix], targets: Sequence[int], base: float
) -> None:
    """Each new source alone and beside the six-source hybrid (its weight on a grid, the
    others fixed); a gain over ``base`` of more than 0.0005 is checked on half-splits."""
    for key, values in extra.items():
        src.norm[key] = normalise(values, src.blocked)
        alone = blend_ndcg(src, {key: 1.0}, targets)
        scored = {w: blend_ndcg(src, {**HYBRID_NEXT, key: w}, targets) for w in SIGNAL_WEIGHTS}
        best = max(scored, key=lambda w: scored[w])
        grid = ", ".join(f"{w:g}: {v:.4f}" for w, v in scored.items())
        print(f"{key}: alone {alone:.4f}; + hybrid best {scored[best]:.4f} at {best} ({grid})")
        if scored[best] > base + 0.0005:
            print(f"  half-split: {half_split_gain(src, key, HYBRID_NEXT, targets)}")
        del src.norm[key]


def cmd_signals(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Round 3: each new source alone and added to the six-source hybrid (its weight on a
    grid, the hybrid's weights fixed), with a half-split check of the gain."""
    targets = data.valid.targets
    src = six_sources(data, vectors, cache)
    base = blend_ndcg(src, HYBRID_NEXT, targets)
    print(f"hybrid with next_item: {base:.4f}")
    started = time.perf_counter()
    extra = new_signals(data, data.valid.histories)
    print(f"new sources built in {time.perf_counter() - started:.0f} s")
    score_each_added(src, extra, targets, base)


def onehot_gram(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """G[i, j] = 1 when items i and j share the code (brand, leaf category); −1 matches none."""
    same = (codes[:, None] == codes[None, :]) & (codes[:, None] >= 0)
    return same.astype(np.float64)


SIDE_BETAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


def cmd_signals_cf(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Round 3, the side information inside EASE (as the MiniLM Gram is): the TF-IDF Gram,
    the same-brand and same-leaf-category Grams added to XᵀX + α·EEᵀ, each on a small grid,
    as the hybrid's ``cf``."""
    targets = data.valid.targets
    n = data.n_items
    src = six_sources(data, vectors, cache)
    print(f"hybrid with next_item: {blend_ndcg(src, HYBRID_NEXT, targets):.4f}")
    decayed = weighted(data.valid.histories, n, DECAY)
    e = vectors.astype(np.float64)
    minilm = e @ e.T
    tfidf = tfidf_similarity(item_terms(data)).astype(np.float64)
    np.fill_diagonal(tfidf, 1.0)
    grams = {
        "tfidf": tfidf, "brand": onehot_gram(brand_codes(data)),
        "leaf": onehot_gram(category_codes(data)),
    }  # fmt: skip
    variants = [("minilm only", 1000.0, None, 0.0)]
    variants += [("tfidf instead", 0.0, "tfidf", a) for a in (300.0, 1000.0, 3000.0)]
    variants += [(f"minilm + {g}", 1000.0, g, a) for g in grams for a in SIDE_BETAS]
    best_cf = (0.0, "", src.norm["cf"])
    for label, alpha, extra, beta in variants:
        text = alpha * minilm + (beta * grams[extra] if extra else 0.0)
        w = ease_weights(None, lam=EASE_LAMBDA, gram=src.gram, text_gram=text, content_alpha=1.0)
        src.norm["cf"] = normalise(np.asarray(decayed @ w, dtype=np.float32), src.blocked)
        alone = blend_ndcg(src, {"cf": 1.0}, targets)
        mixed = blend_ndcg(src, HYBRID_NEXT, targets)
        print(f"cf = EASE + {label} (β={beta:g}): alone {alone:.4f}; in the hybrid {mixed:.4f}")
        if mixed > best_cf[0]:
            best_cf = (mixed, f"{label} {beta:g}", src.norm["cf"])
    print(f"best cf: {best_cf[1]} ({best_cf[0]:.4f})")


def cmd_signals_tune(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Round 3: every weight re-chosen (coordinate search) with the three extra sources that
    came closest in ``signals`` beside the six-source hybrid, and each one's half-split gain."""
    from backend.recommender.evaluation.tuning import coordinate_search

    targets = data.valid.targets
    src = six_sources(data, vectors, cache)
    extra_sources = new_signals(data, data.valid.histories)
    for key in ("bm25", "brand", "cooc-w10-both-p1"):
        src.norm[key] = normalise(extra_sources[key], src.blocked)
    del extra_sources
    axes = [
        (0.2, 0.3, 0.4, 0.5, 0.6),  # content (cf = 1 - content)
        (0.1, 0.15, 0.2, 0.3),  # popularity
        (0.0, 0.05, 0.1, 0.2),  # sequence
        (0.1, 0.2, 0.3, 0.4),  # next_item
        (0.0, 0.05, 0.1, 0.2),  # bm25
        (0.0, 0.02, 0.05, 0.1, 0.15, 0.2),  # brand
        (0.0, 0.02, 0.05, 0.1),  # co-occurrence both ways
    ]

    def weights(point: tuple[float, ...]) -> dict[str, float]:
        c, p, q, s, b, r, o = point
        return {
            "content": c, "cf": 1 - c, "popularity": p, "sequence": q, "next_item": s,
            "bm25": b, "brand": r, "cooc-w10-both-p1": o,
        }  # fmt: skip

    for label, used in (("without the extras", axes[:4] + [(0.0,)] * 3), ("with them", axes)):
        best, seen = coordinate_search(used, lambda point: blend_ndcg(src, weights(point), targets))
        print(f"re-chosen {label}: {seen[best]:.4f} at {weights(best)} ({len(seen)} tried)")
    for key in ("bm25", "brand", "cooc-w10-both-p1"):
        print(f"  {key}: {half_split_gain(src, key, {**weights(best), key: 0.0}, targets)}")
    t = np.asarray(targets)

    def on(rows: npt.NDArray[np.int64], point: tuple[float, ...]) -> float:
        s = np.sum([v * src.norm[k][rows] for k, v in weights(point).items() if v], axis=0)
        return ndcg10(target_ranks(s, src.blocked[rows], t[rows]))

    # Every weight chosen on half the users, scored on the other half, with and without the
    # extras: the gain a weight grid not tuned on the scored users keeps.
    for pick in (0, 1):
        chosen, scored = np.arange(pick, len(t), 2), np.arange(1 - pick, len(t), 2)
        found = {
            label: on(scored, coordinate_search(used, lambda p, c=chosen: on(c, p))[0])
            for label, used in (("without", axes[:4] + [(0.0,)] * 3), ("with", axes))
        }
        print(
            f"  fold {pick}: without the extras {found['without']:.4f}, with them "
            f"{found['with']:.4f} ({found['with'] - found['without']:+.4f})"
        )


def cmd_signals_more(data: LeaveOneOutData, vectors: Matrix, cache: Path) -> None:
    """Round 3, two more views of the same interactions: user-kNN (the recency-weighted
    histories' cosine, each user's k nearest users' items) and GRU4Rec's next-item scores
    (the baseline's training, IDs only), each added to the six-source hybrid."""
    targets = data.valid.targets
    n = data.n_items
    src = six_sources(data, vectors, cache)
    print(f"hybrid with next_item: {blend_ndcg(src, HYBRID_NEXT, targets):.4f}")
    decayed = weighted(data.valid.histories, n, DECAY)
    binary = weighted(data.valid.histories, n, 1.0)
    idf = np.log(len(targets) / np.maximum(src.counts, 1.0))  # a shared rare item says more
    profile = sp.csr_matrix(decayed @ sp.diags(idf))
    norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
    profile = sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-12)) @ profile)
    users = (profile @ profile.T).toarray().astype(np.float32)
    np.fill_diagonal(users, 0.0)
    extra: dict[str, Matrix] = {}
    for k in (50, 200):
        extra[f"user-knn{k}"] = np.asarray(binary.T @ keep_top(users, k).T, dtype=np.float32).T
    del users
    extra["gru4rec"] = as_source(
        sasrec_scores(data, cache, None, architecture="gru4rec"), src.blocked, "softmax2"
    )
    score_each_added(src, extra, targets, blend_ndcg(src, HYBRID_NEXT, targets))


COMMANDS = {
    "blend": cmd_blend,
    "check": cmd_check,
    "extras": cmd_extras,
    "second-stage": cmd_second_stage,
    "second-stage-next": cmd_second_stage_next,
    "second-stage-next-ablation": cmd_second_stage_next_ablation,
    "sasrec": cmd_sasrec,
    "sasrec-tune": cmd_sasrec_tune,
    "sasrec-more": cmd_sasrec_more,
    "zscore": cmd_zscore,
    "recent-popularity": cmd_recent_popularity,
    "rank-blend": cmd_rank_blend,
    "signals": cmd_signals,
    "signals-cf": cmd_signals_cf,
    "signals-more": cmd_signals_more,
    "signals-tune": cmd_signals_tune,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument(
        "--dataset", type=Path, default=Path("../shared/datasets/amazon-scientific")
    )
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    args = parser.parse_args()
    data = load(args.dataset)
    found = sorted(args.cache.glob(f"{data.name}-*.npy"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no item vectors in {args.cache}: run `shopwise evaluate` once first")
    vectors = np.load(found[-1]).astype(np.float32)  # the newest, as the evaluation wrote it
    started = time.perf_counter()
    COMMANDS[args.command](data, vectors, args.cache)
    print(f"{args.command}: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
