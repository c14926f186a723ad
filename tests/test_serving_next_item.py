"""A served app's warm start loads a model version with a next-item model and never imports
torch (only training needs it; the model is saved as numpy arrays, backend/recommender/
next_item.py). In a process of its own: the test's process has torch already. The catalogue
is not indexed, so the embedding model (sentence-transformers, on torch) is not loaded either.
"""

from __future__ import annotations

import uuid

import numpy as np

from backend.db.engine import make_engine, session_scope
from backend.db.migrate import upgrade
from backend.db.models import ModelVersion
from backend.recommender import cf
from backend.recommender.sequential import SASRec, SeqParams, build_model, to_numpy
from tests.fresh_process import fresh_python, last_json

N_ITEMS = 30

SERVE = """
import json, sys
from fastapi.testclient import TestClient
from backend.main import create_app
app = create_app(warm_in_background=False)
with TestClient(app) as client:
    ready = client.get("/health/ready").status_code
    models = app.state.components.training.store.current_unchecked()
    scorer = models.next_item if models else None
    print(json.dumps({
        "ready": ready,
        "version": models.version if models else None,
        "scores": scorer([0, 3, 1]).tolist() if scorer else None,
        "torch": "torch" in sys.modules,
    }))
"""


def test_the_warm_start_loads_a_next_item_model_without_importing_torch(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    upgrade(engine)
    params = SeqParams(hidden=16, inner=32, layers=2, heads=2, max_len=8)
    model = build_model(N_ITEMS, params)
    assert isinstance(model, SASRec)
    served = to_numpy(model, params)
    models = cf.CFModels(
        version="v-served",
        item_ids=[uuid.uuid4() for _ in range(N_ITEMS)],
        als_items=np.random.default_rng(0).normal(size=(N_ITEMS, 4)).astype(np.float32),
        next_item=served,
    )
    cf.save(models, tmp_path / "data" / "models" / "cf-v-served.npz")  # the worker's save
    with session_scope(engine) as session:
        session.add(ModelVersion(version="v-served", kinds=models.kinds(), n_items=N_ITEMS))
    engine.dispose()

    out = fresh_python(
        SERVE, env={"DATABASE_URL": url, "DATA_DIR": str(tmp_path / "data"), "REDIS_URL": ""}
    )
    result = last_json(out)
    assert result["ready"] == 200 and result["version"] == "v-served"
    np.testing.assert_allclose(result["scores"], served([0, 3, 1]), rtol=1e-6)
    assert result["torch"] is False
