"""Products: concrete items from the catalogue's product types, brands and features, with
shop-like prices, stock and a skewed latent popularity."""

import math
from collections.abc import Sequence
from datetime import datetime
from random import Random

from seed_model import (
    CATALOGUE,
    COLOURS,
    OUT_OF_STOCK_SHARE,
    WORKED_EXAMPLES,
    Category,
    Feature,
    Product,
    ProductType,
    charm_price,
    days_ago,
    join_phrases,
    make_id,
    slugify,
)

# --------------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------------


# Price multiplier by a brand's position in its category's list: premium to value brands.
BRAND_TIERS = (1.25, 1.0, 0.88, 1.1, 0.8, 1.15)


def choose_features(kind_: ProductType, room: int, rng: Random) -> list[Feature]:
    """Pick one exclusive option (if any) plus up to two optional features, within `room` tags."""
    picked: list[Feature] = []
    if kind_.exclusive:
        picked.append(rng.choice(kind_.exclusive))
    optional = [f for f in kind_.features if f.tag not in kind_.tags]
    wanted = rng.choice((1, 1, 2)) if not picked else rng.choice((0, 1))
    wanted = min(wanted, len(optional), room - len(picked))
    picked.extend(rng.sample(optional, wanted))
    return picked


def build_name(
    category: Category,
    kind_: ProductType,
    brand: str,
    variant: str,
    colour: str | None,
    title: str | None,
) -> str:
    if title is not None:
        return f"{title} {kind_.noun}".strip()
    name = " ".join(part for part in (brand, kind_.noun, variant) if part)
    if category.colour_in_name and colour:
        name = f"{name} - {colour.title()}"
    return name


def build_description(
    kind_: ProductType,
    brand: str,
    colour: str | None,
    features: Sequence[Feature],
    title: str | None,
) -> str:
    if title is not None:  # books and games: "<blurb> by <author>, in a hardcover edition."
        extra = f", {join_phrases([f.phrase for f in features])}" if features else ""
        return f"{kind_.blurb} {kind_.by} {brand}{extra}. {kind_.use}"
    # Optional features first, the exclusive choice (flavour, scent...) last, reads best.
    ordered = [f for f in features if f not in kind_.exclusive]
    ordered += [f for f in features if f in kind_.exclusive]
    lead = kind_.blurb
    if ordered:
        joiner = ", plus " if " with " in lead else " with "
        lead += joiner + join_phrases([f.phrase for f in ordered])
    colour_note = f" Colour: {COLOURS[colour]}." if colour else ""
    return f"{lead}.{colour_note} {kind_.use}"


def build_tags(
    category: Category, kind_: ProductType, colour: str | None, features: Sequence[Feature]
) -> list[str]:
    tags = [slugify(category.name), *kind_.tags]
    if colour:
        tags.append(colour)
    tags.extend(f.tag for f in features)
    return list(dict.fromkeys(tags))  # de-duplicate, keep order


def make_product(
    category: Category, kind_: ProductType, taken: set[str], rng: Random, title: str | None = None
) -> Product:
    for _ in range(200):
        brand = rng.choice(category.brands)
        variant, variant_mult = rng.choice(kind_.variants)
        colour = rng.choice(kind_.colours) if kind_.colours else None
        name = build_name(category, kind_, brand, variant, colour, title)
        if name not in taken:
            break
    else:
        raise RuntimeError(f"could not find a unique name for {kind_.noun!r}")
    base_tags = 1 + len(kind_.tags) + (1 if colour else 0)
    features = choose_features(kind_, 8 - base_tags, rng)
    multiplier = variant_mult * math.prod(f.multiplier for f in features)
    multiplier *= BRAND_TIERS[category.brands.index(brand) % len(BRAND_TIERS)]
    taken.add(name)
    return Product(
        id=make_id("product", name),
        name=name,
        description=build_description(kind_, brand, colour, features, title),
        category=category.name,
        price=product_price(kind_, multiplier, rng),
        quantity=0,  # set later by assign_stock
        tags=build_tags(category, kind_, colour, features),
        created_at=product_created_at(rng),
    )


def product_price(kind_: ProductType, multiplier: float, rng: Random) -> str:
    """Typical price for the type, scaled by brand tier, variant and features, with noise.

    Titled items (books, games) have narrow ranges and are priced uniformly within them.
    """
    low, high = kind_.price
    if kind_.titles:
        raw = rng.uniform(low, high) * multiplier
    else:
        raw = math.sqrt(low * high) * multiplier * rng.uniform(0.88, 1.12)
    return charm_price(min(max(raw, low * 0.7), high * 1.3), rng)


def product_created_at(rng: Random) -> datetime:
    """Most of the catalogue is older than the interaction window; ~12% are new arrivals."""
    if rng.random() < 0.12:
        return days_ago(rng, 7, 100)
    return days_ago(rng, 125, 720)


def category_products(category: Category, taken: set[str], rng: Random) -> list[Product]:
    """Round-robin over the category's product types until the category target is reached."""
    titles = [rng.sample(k.titles, len(k.titles)) for k in category.types]
    products: list[Product] = []
    index = 0
    while len(products) < category.target:
        if index > category.target * 10:
            raise RuntimeError(f"not enough titles in {category.name}")
        position = index % len(category.types)
        kind_ = category.types[position]
        index += 1
        if not kind_.titles:
            products.append(make_product(category, kind_, taken, rng))
        elif titles[position]:
            products.append(make_product(category, kind_, taken, rng, titles[position].pop()))
    return products


def worked_example_products() -> list[Product]:
    return [Product(id=make_id("product", spec["name"]), **spec) for spec in WORKED_EXAMPLES]


def assign_stock(products: list[Product], rng: Random) -> None:
    """~5% out of stock (never the worked examples), the rest a long-tailed stock level."""
    protected = {spec["name"] for spec in WORKED_EXAMPLES}
    candidates = [p for p in products if p.name not in protected]
    sold_out = {p.id for p in rng.sample(candidates, round(len(products) * OUT_OF_STOCK_SHARE))}
    for product in candidates:
        if product.id in sold_out:
            product.quantity = 0
        else:
            product.quantity = min(500, max(1, int(rng.lognormvariate(3.6, 0.9))))


def assign_popularity(products: list[Product], rng: Random) -> None:
    """Zipf-like latent popularity over a random ranking, so demand is strongly skewed."""
    ranking = list(products)
    rng.shuffle(ranking)
    for rank, product in enumerate(ranking, start=1):
        product.popularity = 1.0 / rank**0.85
    top = ranking[0].popularity
    for product in products:  # worked examples are reliably visible in the demo data
        if product.name in {spec["name"] for spec in WORKED_EXAMPLES}:
            product.popularity = max(product.popularity, top * 0.25)


def build_products(rng: Random) -> list[Product]:
    taken = {spec["name"] for spec in WORKED_EXAMPLES}
    products = worked_example_products()
    for category in CATALOGUE:
        products.extend(category_products(category, taken, rng))
    assign_stock(products, rng)
    assign_popularity(products, rng)
    return products
