from __future__ import annotations

from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager

from .conftest import CATALOG, DESK_LAMP, POPULARITY


def test_snapshot_indexes_categories_and_tags(snapshot):
    assert len(snapshot) == len(CATALOG)
    lamp = snapshot.index[DESK_LAMP.id]
    assert lamp in snapshot.category_postings_for("Home").tolist()
    assert lamp in snapshot.tag_postings_for("lighting").tolist()
    assert snapshot.category_postings_for("Garden") is None


def test_events_bump_popularity_in_place(snapshot):
    lamp = snapshot.index[DESK_LAMP.id]
    before = snapshot.popularity[lamp]
    snapshot.record_interaction(DESK_LAMP.id, 2)
    assert snapshot.popularity[lamp] == before + 2


def test_manager_rebuilds_only_when_the_catalog_version_changes():
    version = {"v": "1"}
    builds = []

    def load():
        builds.append(version["v"])
        return CatalogSnapshot.build(CATALOG, POPULARITY, version=version["v"])

    manager = SnapshotManager(load=load, version=lambda: version["v"])
    assert manager.get().version == "1"
    assert manager.refresh_if_stale() is False
    version["v"] = "2"
    assert manager.refresh_if_stale() is True
    assert manager.get().version == "2"
    assert builds == ["1", "2"]
