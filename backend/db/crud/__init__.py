"""Data access: every query lives in one of these modules, keyword-only functions that take
the session explicitly. Callers say ``crud.get_user(session=…, user_id=…)``; the modules split
the queries by what they touch."""

from __future__ import annotations

from backend.db.crud.bookkeeping import (
    bump_co_interactions,
    bump_counter,
    bump_counters,
    co_interactions,
    earlier_purchases,
    get_counter,
    ledger,
    mark_processed,
    set_counter,
)
from backend.db.crud.catalog import (
    catalog_version,
    get_product,
    interaction_counts,
    last_index_run,
    list_categories,
    list_products,
    load_catalog,
    product_facets,
)
from backend.db.crud.events import (
    apply_cart_and_wishlist,
    existing_users_and_products,
    find_events,
    has_event_ids_of,
    insert_new_events,
)
from backend.db.crud.outbox import add_to_outbox, claim_outbox, outbox_size, remove_from_outbox
from backend.db.crud.profiles import (
    StoredItem,
    fresh_user_recommendations,
    lock_profiles,
    profile_version,
    replace_user_recommendations,
    save_profiles,
)
from backend.db.crud.users import (
    Shopper,
    basket_names,
    cart,
    existing_user_ids,
    get_shopper,
    get_user,
    list_users,
    products_by_action,
    recent_interaction_fields,
    recent_interactions,
    search_history,
    wishlist,
)

__all__ = [
    "Shopper",
    "StoredItem",
    "basket_names",
    "add_to_outbox",
    "apply_cart_and_wishlist",
    "bump_co_interactions",
    "bump_counter",
    "bump_counters",
    "cart",
    "catalog_version",
    "claim_outbox",
    "co_interactions",
    "earlier_purchases",
    "existing_user_ids",
    "existing_users_and_products",
    "find_events",
    "fresh_user_recommendations",
    "get_counter",
    "get_product",
    "get_shopper",
    "get_user",
    "has_event_ids_of",
    "insert_new_events",
    "interaction_counts",
    "last_index_run",
    "ledger",
    "list_categories",
    "list_products",
    "list_users",
    "load_catalog",
    "mark_processed",
    "outbox_size",
    "lock_profiles",
    "save_profiles",
    "product_facets",
    "products_by_action",
    "profile_version",
    "recent_interaction_fields",
    "recent_interactions",
    "remove_from_outbox",
    "replace_user_recommendations",
    "search_history",
    "set_counter",
    "wishlist",
]
