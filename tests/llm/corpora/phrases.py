"""The phrase bank of the corpora: how a shopper-facing copywriter would say things.

Written from the copywriter's side, blind to the check's style vocabulary: FAITHFUL restates one
fact in natural shop language (it may only say what the fact says); PLANTED holds plausible
claims that no fact of ours ever states, one list per kind of claim. Slots in braces are
filled from the product, its facts and the catalog.
"""

from __future__ import annotations

# --- faithful: one template list per fact kind ---------------------------------------------

PAST_VERBS = {
    "view": ["viewed", "looked at", "browsed", "checked out", "had a look at"],
    "click": ["viewed", "looked at", "checked out"],
    "purchase": ["bought", "purchased", "ordered", "picked up"],
    "add_to_cart": ["added the {past} to your cart", "put the {past} in your basket"],
    "remove_from_cart": ["had the {past} in your cart"],
    "wishlist": ["saved the {past} to your wishlist", "wishlisted the {past}"],
}

WHEN = {
    "today": ["today", "earlier today", ""],
    "yesterday": ["yesterday", ""],
    "days": ["{d} days ago", "a few days ago", "recently", "earlier this week", ""],
    "week": ["last week", "about a week ago", "recently", ""],
    "weeks": ["{w} weeks ago", "a few weeks ago", "recently", ""],
    "months": ["a while back", "{m} months ago", "some time ago", ""],
    "none": [""],
}

FAITHFUL: dict[str, list[str]] = {
    "past": [
        "Since you {did} {when}, this could be your next favourite.",
        "You {did} {when}, and this {cat_lower} pick suits that taste.",
        "Because you {did} {when}, we think you'll enjoy this one.",
        "A natural follow-on for someone who {did} {when}.",
        "Picked for you because you {did} {when}.",
        "You {did} {when}; this makes a lovely companion to it.",
        "Inspired by the fact that you {did} {when}.",
    ],
    "similar": [
        "Very similar to the {sim}.",
        "A close match for the {sim}.",
        "If the {sim} caught your interest, this is a lot like it.",
        "Much like the {sim}, in a great way.",
        "Closely related to the {sim}.",
    ],
    "co_interaction": [
        "{n} shoppers who engaged with the {past} also engaged with this.",
        "Shoppers interested in the {past} were interested in this too: {n} of them.",
        "{n} other shoppers spent time with both this and the {past}.",
    ],
    "category": [
        "Right in line with your love of {cats}.",
        "Matches your interest in {cats}.",
        "A great fit for someone who enjoys {cats}.",
        "Perfect if {cats} is your thing.",
    ],
    "tag": [
        "Ticks your {tags} boxes.",
        "Great if you're into {tags}.",
        "Plays to your taste for {tags}.",
        "Matches the {tags} style you like.",
    ],
    "popularity": [
        "One of the most popular picks in our shop.",
        "Ranked #{rank} in the shop by shopper interest.",
        "A crowd favourite, #{rank} in the shop.",
        "{count} shoppers have already shown interest in it.",
        "Among our top picks, ranked number {rank}.",
    ],
    "price": [
        "Yours for ${price}.",
        "Priced at ${price}.",
        "At ${price}, it's a lovely treat.",
        "It costs ${price}.",
    ],
    "stock": [
        "It's in stock.",
        "Currently in stock.",
        "Available in the shop.",
    ],
    "own_tags": [
        "A {tag1} and {tag2} design.",
        "With its {tag1} and {tag2} character, it's a solid {cat_lower} choice.",
        "Think {tag1}, think {tag2}: a handy {cat_lower} option.",
    ],
}

INTROS = [
    "Hi {first}! Here are some picks we think you'll like.",
    "Hello {first}, a few ideas chosen just for you.",
    "{first}, here's a round of recommendations for you.",
    "Welcome back, {first}! Take a look at these.",
    "Hi {first}, we've lined up {count} suggestions for you.",
    "Hey {first}! These might be right up your street.",
]

# --- planted: claims no fact states, by kind -----------------------------------------------

PLANTED: dict[str, list[str]] = {
    "price": [
        "Now just ${fake}, down from ${price}.",
        "On sale this week only.",
        "Save {pct}% if you order today.",
        "A bargain at under ${round}.",
        "It's marked down for a limited time.",
        "Currently {pct}% off.",
        "Cheaper than ever right now.",
        "Priced at ${fake}.",
        "Grab it at a discount while the offer lasts.",
    ],
    "shipping": [
        "Ships free within 24 hours.",
        "Order today and it arrives tomorrow.",
        "Free next-day delivery included.",
        "Delivered to your door in two days.",
        "Free returns if it isn't right.",
        "Express shipping at no extra cost.",
        "Dispatched the same day you order.",
    ],
    "stock": [
        "Only {n} left in stock, so grab it while you can.",
        "Selling out fast.",
        "Almost gone, so don't wait.",
        "Back in stock after a long wait.",
        "Limited stock remaining.",
        "Currently out of stock, but worth the wait.",
        "Low stock: order soon.",
    ],
    "social": [
        "Rated {rating} out of 5 by our customers.",
        "Over {big} five-star reviews.",
        "A bestseller in {cat}.",
        "Everyone is talking about it.",
        "Loved by thousands of shoppers.",
        "Reviewers call it a must-have.",
        "Trending this month.",
        "Our customers' top choice in {cat}.",
        "A popular pick with shoppers like you.",
    ],
    "past": [
        "Since you bought the {other} last month, this follows on nicely.",
        "You've ordered from {cat} before and loved it.",
        "Just like the {past} you purchased.",
        "You viewed it {n} times this week.",
        "You added it to your cart last night.",
        "You reviewed the {other} so well that this one fits.",
        "You {did} {wrong_when}.",
    ],
    "material": [
        "Made from {material}.",
        "Handcrafted in {country}.",
        "Certified organic.",
        "Crafted from recycled ocean plastic.",
        "Genuine full-grain leather throughout.",
        "Made in {country}.",
        "FSC-certified wood construction.",
        "Dermatologist tested.",
    ],
    "compatibility": [
        "Works with any iPhone or Android phone.",
        "Fits all standard sizes.",
        "Compatible with Alexa and Google Home.",
        "Not suitable for children under 3.",
        "No batteries needed.",
        "Doesn't need any assembly.",
        "It isn't {tag1}, so keep that in mind.",
        "Won't fit smaller spaces.",
    ],
    "included": [
        "Comes with a free carry case.",
        "Batteries included.",
        "Includes a spare set of parts.",
        "Bundled with a gift box.",
        "Everything you need is in the box.",
        "Ships with a user guide and two spare parts.",
        "Includes a two-year warranty.",
    ],
    "novelty": [
        "Brand new for this season.",
        "Just launched.",
        "Winner of a design award.",
        "Exclusive to our shop.",
        "A limited edition release.",
        "Our latest arrival.",
        "The newest model in the range.",
    ],
    "comparison": [
        "Better value than the {other}.",
        "Lighter than most {cat_lower} options.",
        "Outperforms pricier rivals.",
        "A step up from the {past}.",
        "More durable than similar {cat_lower} picks.",
        "The best {cat_lower} choice in our shop.",
        "Cheaper than comparable models.",
    ],
}

MATERIALS = ["solid oak", "bamboo", "merino wool", "stainless steel", "silicone", "cotton",
             "vegan leather", "recycled aluminium", "ceramic", "organic hemp"]  # fmt: skip
COUNTRIES = ["Italy", "Japan", "Portugal", "Germany", "Denmark", "Vermont"]
JOINERS = [" ", " And ", " Plus, ", " Best of all: "]
