"""Generate Shopwise demo data: products, users and interactions as JSON.

Run from the repository root:

    python seed_data/generate.py

Standard library only and fully deterministic: a fixed random seed, a fixed reference time
(instead of ``now()``) and ``uuid5`` ids, so two runs write byte-identical files.
"""

import json
import math
import re
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any, NamedTuple

SEED = 20261101
REFERENCE_TIME = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
WINDOW_DAYS = 120
WINDOW_START = REFERENCE_TIME - timedelta(days=WINDOW_DAYS)
NAMESPACE = uuid.UUID("5b0f3c2e-9d7a-4e61-8a3b-2f4c6d8e1a90")
OUT_DIR = Path(__file__).resolve().parent

MIN_PRODUCTS = 320
MIN_CATEGORIES = 12
MIN_USERS = 60
MIN_INTERACTIONS = 2500
USERS_PER_PERSONA = 5
NEWCOMERS = 3
INTERACTIONS_PER_USER = (15, 80)
OUT_OF_STOCK_SHARE = 0.05
EXPLORATION_SHARE = 0.20
SEARCH_SESSION_SHARE = 0.35
REVISIT_SHARE = 0.15

ACTIONS = ("view", "click", "add_to_cart", "wishlist", "purchase", "search")

# --------------------------------------------------------------------------------------------
# Catalogue definition
# --------------------------------------------------------------------------------------------

COLOURS: dict[str, str] = {
    "black": "matte black",
    "white": "clean white",
    "grey": "slate grey",
    "silver": "brushed silver",
    "navy": "deep navy",
    "blue": "ocean blue",
    "red": "cherry red",
    "green": "forest green",
    "pink": "blush pink",
    "beige": "warm beige",
    "brown": "walnut brown",
    "yellow": "sunflower yellow",
    "purple": "plum purple",
    "orange": "burnt orange",
    "coral": "bright coral",
    "nude": "soft nude",
}
NEUTRAL = ("black", "white", "grey")
EARTHY = ("beige", "brown", "green", "grey", "navy")
BRIGHT = ("red", "blue", "yellow", "pink", "purple", "orange", "green")


class Feature(NamedTuple):
    """An optional product attribute: its tag, a description phrase and a price multiplier."""

    tag: str
    phrase: str
    multiplier: float = 1.0


@dataclass(frozen=True)
class ProductType:
    """A kind of product from which several concrete products are generated."""

    noun: str
    tags: tuple[str, ...]
    price: tuple[float, float]
    blurb: str
    use: str
    features: tuple[Feature, ...] = ()
    exclusive: tuple[Feature, ...] = ()  # exactly one is picked (format, flavour, scent...)
    variants: tuple[tuple[str, float], ...] = (("", 1.0),)
    colours: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()  # titled items (books, games) are named by title
    by: str = "by"


@dataclass(frozen=True)
class Category:
    name: str
    brands: tuple[str, ...]
    target: int
    types: tuple[ProductType, ...]
    colour_in_name: bool = False


def kind(
    noun: str,
    tags: Sequence[str],
    price: tuple[float, float],
    blurb: str,
    use: str,
    features: Sequence[tuple[Any, ...]] = (),
    exclusive: Sequence[tuple[Any, ...]] = (),
    variants: Sequence[tuple[str, float]] = (("", 1.0),),
    colours: Sequence[str] = (),
    titles: Sequence[str] = (),
    by: str = "by",
) -> ProductType:
    """Compact constructor so the catalogue below stays readable."""
    return ProductType(
        noun=noun,
        tags=tuple(tags),
        price=price,
        blurb=blurb,
        use=use,
        features=tuple(Feature(*f) for f in features),
        exclusive=tuple(Feature(*f) for f in exclusive),
        variants=tuple(variants),
        colours=tuple(colours),
        titles=tuple(titles),
        by=by,
    )


BOOK_FORMATS = (
    ("hardcover", "in a cloth-bound hardcover edition", 1.6),
    ("paperback", "in a lightweight paperback edition", 1.0),
)

CATALOGUE: tuple[Category, ...] = (
    Category(
        "Electronics",
        ("Aurora", "Voltix", "Nimbus", "Kestrel", "Lumora", "Halcyon"),
        34,
        (
            kind(
                "Wireless Earbuds",
                ("audio", "earbuds", "wireless"),
                (29, 149),
                "True-wireless earbuds",
                "Sized for commutes, workouts and long calls, with a pocketable charging case.",
                features=(
                    ("noise-cancelling", "active noise cancelling", 1.3),
                    ("waterproof", "an IPX7 sweat- and water-proof rating"),
                    ("long-battery", "up to 32 hours of playback with the case"),
                    ("bluetooth", "Bluetooth 5.3 multipoint pairing"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("Lite", 0.7), ("Sport", 1.1), ("Max", 1.8)),
                colours=NEUTRAL + ("navy", "pink"),
            ),
            kind(
                "Over-Ear Headphones",
                ("audio", "headphones"),
                (49, 349),
                "Closed-back over-ear headphones",
                "Memory-foam cushions keep long listening sessions comfortable at home or on "
                "a flight.",
                exclusive=(
                    ("noise-cancelling", "hybrid active noise cancelling", 1.3),
                    ("hi-fi", "40 mm hi-res hi-fi drivers", 1.2),
                ),
                features=(
                    ("wireless", "40 hours of Bluetooth wireless playback"),
                    ("foldable", "a foldable travel frame"),
                ),
                variants=(("", 1.0), ("Studio", 1.4), ("Pro", 1.6), ("Air", 0.8)),
                colours=NEUTRAL + ("silver", "navy", "beige"),
            ),
            kind(
                "Gaming Headset",
                ("audio", "headset", "gaming"),
                (29, 179),
                "An over-ear gaming headset",
                "A detachable boom mic keeps team chat clear during long sessions on PC or "
                "console.",
                features=(
                    ("rgb", "RGB-lit earcups"),
                    ("wireless", "a low-latency 2.4 GHz wireless dongle", 1.3),
                    ("surround-sound", "virtual 7.1 surround sound"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("X", 1.2), ("Lite", 0.7)),
                colours=("black", "white", "red"),
            ),
            kind(
                "Bluetooth Speaker",
                ("audio", "speaker", "wireless"),
                (25, 199),
                "A portable Bluetooth speaker",
                "Throw it in a bag for the beach, the park or a backyard barbecue.",
                features=(
                    ("waterproof", "an IP67 dust- and waterproof shell"),
                    ("bass", "dual passive radiators for deep bass"),
                    ("long-battery", "20 hours of battery life"),
                ),
                variants=(("Mini", 0.6), ("", 1.0), ("Max", 1.7), ("Go", 0.8)),
                colours=NEUTRAL + ("blue", "red", "green", "orange"),
            ),
            kind(
                "Mechanical Keyboard",
                ("gaming", "keyboard"),
                (49, 189),
                "A tenkeyless mechanical keyboard",
                "Great for marathon gaming sessions and fast, accurate typing at the desk.",
                features=(
                    ("rgb", "per-key RGB backlighting"),
                    ("wireless", "tri-mode wireless and USB-C connectivity", 1.3),
                    ("hot-swappable", "hot-swappable tactile switches"),
                ),
                variants=(("", 1.0), ("TKL", 0.9), ("75", 1.1), ("Pro", 1.4)),
                colours=("black", "white", "grey", "pink"),
            ),
            kind(
                "Gaming Mouse",
                ("gaming", "mouse"),
                (19, 99),
                "An ambidextrous gaming mouse",
                "Light enough for fast flicks in shooters and precise enough for everyday work.",
                features=(
                    ("rgb", "customisable RGB zones"),
                    ("wireless", "a 2.4 GHz wireless receiver", 1.3),
                    ("lightweight", "a 58-gram honeycomb shell"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("Mini", 0.8), ("Air", 1.2)),
                colours=("black", "white", "pink"),
            ),
            kind(
                "Smartwatch",
                ("wearables", "smartwatch", "fitness"),
                (79, 399),
                "A smartwatch with a bright AMOLED display",
                "Tracks workouts, sleep and notifications from your wrist all day.",
                features=(
                    ("waterproof", "5 ATM water resistance"),
                    ("gps", "built-in dual-band GPS", 1.2),
                    ("heart-rate", "continuous heart-rate and SpO2 tracking"),
                ),
                variants=(("", 1.0), ("Active", 0.9), ("Pro", 1.5), ("Classic", 1.2)),
                colours=("black", "silver", "pink", "green"),
            ),
            kind(
                "4K Streaming Stick",
                ("streaming", "tv"),
                (29, 69),
                "A 4K HDR streaming stick",
                "Plugs straight into an HDMI port to turn any TV into a smart TV.",
                features=(
                    ("voice-control", "a voice-control remote"),
                    ("wifi-6", "Wi-Fi 6 for buffer-free playback"),
                    ("dolby-vision", "Dolby Vision and HDR10+ support"),
                ),
                variants=(("", 1.0), ("Plus", 1.3), ("Max", 1.6)),
            ),
            kind(
                "Smart Plug",
                ("smart-home", "plug"),
                (15, 39),
                "A Wi-Fi smart plug",
                "Schedule lamps, fans and coffee makers from your phone or by voice.",
                features=(
                    ("energy-monitoring", "built-in energy monitoring"),
                    ("voice-control", "support for popular voice assistants"),
                ),
                variants=(("", 1.0), ("2-Pack", 1.7), ("4-Pack", 3.0), ("Mini", 0.8)),
                colours=("white", "black"),
            ),
            kind(
                "Webcam",
                ("webcam", "video"),
                (39, 149),
                "A webcam with a wide-angle glass lens",
                "Look sharp on video calls and streams, even in a dim home office.",
                features=(
                    ("autofocus", "fast autofocus and automatic light correction"),
                    ("microphone", "dual noise-reducing microphones"),
                    ("privacy-shutter", "a built-in privacy shutter"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("Studio", 1.3), ("Lite", 0.7)),
                colours=("black", "white"),
            ),
            kind(
                "E-Reader",
                ("reading", "e-reader"),
                (89, 249),
                "A 6.8-inch glare-free e-reader",
                "Holds thousands of books and lasts weeks on a single charge.",
                features=(
                    ("waterproof", "IPX8 waterproofing for reading in the bath or by the pool"),
                    ("backlit", "a warm adjustable backlight"),
                ),
                variants=(("", 1.0), ("Plus", 1.3), ("Color", 1.6), ("Lite", 0.8)),
                colours=("black", "green", "pink"),
            ),
            kind(
                "Video Baby Monitor",
                ("baby", "monitor", "kids"),
                (49, 179),
                "A video baby monitor with a 5-inch parent unit",
                "Keep an eye on the nursery from anywhere in the house.",
                features=(
                    ("night-vision", "infrared night vision"),
                    ("two-way-audio", "two-way talk-back audio"),
                    ("app-control", "app streaming over Wi-Fi", 1.2),
                ),
                variants=(("", 1.0), ("Plus", 1.3), ("Duo", 1.6)),
                colours=("white",),
            ),
        ),
    ),
    Category(
        "Accessories",
        ("Carrow & Finch", "Mapleline", "Orbitek", "Brightwell", "Tessel"),
        26,
        (
            kind(
                "Phone Case",
                ("phone", "case"),
                (12, 45),
                "A slim phone case",
                "Raised edges protect the screen and camera from everyday drops.",
                features=(
                    ("shockproof", "shockproof air-cushion corners"),
                    ("magnetic", "built-in magnets for magnetic chargers and mounts"),
                    ("leather", "a vegetable-tanned leather back", 1.5),
                ),
                variants=(("", 1.0), ("Clear", 0.8), ("Rugged", 1.3), ("Slim", 0.9)),
                colours=NEUTRAL + BRIGHT,
            ),
            kind(
                "Braided USB-C Cable",
                ("cable", "charging", "usb-c"),
                (8, 25),
                "A nylon-braided USB-C cable",
                "Long enough to reach from the wall socket to the sofa or bed.",
                features=(
                    ("fast-charging", "100 W fast-charging support"),
                    ("durable", "a strain relief tested to 30,000 bends"),
                ),
                variants=(("1m", 0.8), ("2m", 1.0), ("3m", 1.3), ("2-Pack", 1.6)),
                colours=NEUTRAL + ("red", "blue"),
            ),
            kind(
                "Wireless Charging Pad",
                ("charging", "wireless"),
                (19, 59),
                "A wireless charging pad",
                "Drop your phone or earbuds on it at the bedside and wake up to a full battery.",
                features=(
                    ("fast-charging", "15 W fast charging"),
                    ("magnetic", "magnetic alignment"),
                ),
                variants=(("", 1.0), ("Duo", 1.5), ("3-in-1", 2.0), ("Mini", 0.7)),
                colours=NEUTRAL,
            ),
            kind(
                "Power Bank",
                ("charging", "power-bank", "portable"),
                (19, 79),
                "A pocket-sized power bank",
                "Keeps a phone topped up through long travel days and festivals.",
                features=(
                    ("fast-charging", "20 W USB-C fast charging"),
                    ("high-capacity", "a high-capacity 20,000 mAh cell", 1.3),
                    ("magnetic", "a magnetic snap-on back"),
                ),
                variants=(("10K", 0.8), ("20K", 1.2), ("", 1.0), ("Slim", 0.9)),
                colours=NEUTRAL + ("blue",),
            ),
            kind(
                "Laptop Sleeve",
                ("laptop", "sleeve", "bags"),
                (19, 59),
                "A padded laptop sleeve",
                "Slides into a backpack or tote to protect a 13- to 16-inch laptop.",
                features=(
                    ("waterproof", "a waterproof outer shell"),
                    ("wool", "a soft wool-felt lining"),
                ),
                variants=(("13in", 0.9), ("14in", 1.0), ("16in", 1.15)),
                colours=EARTHY + ("black",),
            ),
            kind(
                "Leather Wallet",
                ("wallet", "leather"),
                (25, 89),
                "A slim wallet in full-grain leather",
                "Holds eight cards and folded notes without bulging in a front pocket.",
                features=(
                    ("rfid-blocking", "an RFID-blocking lining"),
                    ("handmade", "hand-stitched edges", 1.3),
                ),
                variants=(("", 1.0), ("Classic", 1.1), ("Compact", 0.9), ("Card Holder", 0.6)),
                colours=("black", "brown", "navy", "beige"),
            ),
            kind(
                "Polarized Sunglasses",
                ("sunglasses", "eyewear", "polarized"),
                (19, 149),
                "Polarized sunglasses with acetate frames",
                "Cut glare on the water, on the road and on bright city walks.",
                features=(
                    ("uv-protection", "UV400 protection"),
                    ("lightweight", "a featherweight frame"),
                    ("titanium", "titanium hinges", 1.3),
                ),
                variants=(("Aviator", 1.1), ("Round", 1.0), ("Square", 1.0), ("Sport", 1.2)),
                colours=("black", "brown", "green", "blue"),
            ),
            kind(
                "Everyday Backpack",
                ("backpack", "bags", "travel"),
                (39, 149),
                "A 22-litre everyday backpack",
                "A padded laptop compartment and quick-access pockets make it an easy "
                "commuter bag.",
                features=(
                    ("waterproof", "a waterproof roll-top"),
                    ("recycled", "shell fabric made from recycled bottles"),
                ),
                variants=(("", 1.0), ("Pro", 1.4), ("Mini", 0.7), ("Travel", 1.3)),
                colours=EARTHY + ("black",),
            ),
            kind(
                "Headphone Stand",
                ("audio", "stand", "desk"),
                (15, 45),
                "A weighted headphone stand",
                "Keeps headphones off the desk and their headband in shape.",
                features=(
                    ("aluminium", "a brushed aluminium frame"),
                    ("usb-hub", "a built-in USB hub", 1.4),
                ),
                variants=(("", 1.0), ("Duo", 1.5)),
                colours=("black", "silver"),
            ),
        ),
    ),
    Category(
        "Home",
        ("Hearth & Hollow", "Linden", "Northwick", "Solace", "Birchlane"),
        25,
        (
            kind(
                "Floor Lamp",
                ("lighting", "lamp", "led"),
                (49, 189),
                "A floor lamp with an energy-efficient LED bulb",
                "Throws warm light over a sofa or reading chair without taking up table space.",
                features=(
                    ("dimmable", "a step-less dimmer"),
                    ("smart-home", "app and voice control", 1.3),
                    ("linen", "a natural linen shade"),
                ),
                variants=(("", 1.0), ("Arc", 1.3), ("Tripod", 1.1)),
                colours=("black", "white", "beige"),
            ),
            kind(
                "Reading Lamp",
                ("lighting", "lamp", "reading"),
                (25, 99),
                "A bedside reading lamp",
                "Angle the head to light a book without waking a partner.",
                features=(
                    ("led", "an energy-efficient LED bulb"),
                    ("dimmable", "three brightness levels"),
                    ("usb-charging", "a USB charging port in the base"),
                ),
                variants=(("", 1.0), ("Mini", 0.7), ("Swing Arm", 1.2)),
                colours=("black", "white", "green", "navy"),
            ),
            kind(
                "LED String Lights",
                ("lighting", "led", "decor"),
                (12, 39),
                "Warm-white LED string lights",
                "Drape them over shelves, headboards or a balcony railing for a cosy glow.",
                features=(
                    ("waterproof", "IP65 waterproofing for outdoor use"),
                    ("remote", "a remote with eight light modes"),
                ),
                variants=(("5m", 0.7), ("10m", 1.0), ("20m", 1.5)),
            ),
            kind(
                "Knit Throw Blanket",
                ("bedding", "blanket"),
                (29, 89),
                "A chunky knit throw blanket",
                "Sized to drape over a sofa and soft enough for movie nights.",
                exclusive=(
                    ("organic", "certified organic cotton yarn"),
                    ("wool", "a merino wool blend", 1.4),
                ),
                features=(("machine-washable", "a machine-washable finish"),),
                variants=(("", 1.0), ("Oversized", 1.3)),
                colours=EARTHY + ("pink", "yellow"),
            ),
            kind(
                "Linen Duvet Cover Set",
                ("bedding", "duvet", "linen"),
                (59, 189),
                "A stonewashed linen duvet cover set with two pillowcases",
                "Breathable enough for summer and easy to layer in winter.",
                features=(
                    ("organic", "European flax grown without pesticides"),
                    ("hypoallergenic", "naturally hypoallergenic fibres"),
                ),
                variants=(("Twin", 0.8), ("Queen", 1.0), ("King", 1.2)),
                colours=("white", "beige", "grey", "green", "pink"),
            ),
            kind(
                "Soy Wax Candle",
                ("candle", "decor", "fragrance"),
                (12, 42),
                "A hand-poured soy wax candle",
                "Burns cleanly for around 50 hours on a coffee table or bathroom shelf.",
                features=(
                    ("vegan", "vegan, cruelty-free wax"),
                    ("wooden-wick", "a crackling wooden wick"),
                    ("essential-oils", "natural essential oils"),
                ),
                variants=(("", 1.0), ("Large", 1.6), ("Travel Tin", 0.5)),
                colours=("white", "beige", "green", "pink"),
            ),
            kind(
                "Woven Storage Basket",
                ("storage", "organization"),
                (15, 49),
                "A woven seagrass storage basket",
                "Tidies away throws, toys or laundry in a living room or nursery.",
                features=(
                    ("handmade", "handwoven by artisans"),
                    ("eco-friendly", "natural, biodegradable fibres"),
                ),
                variants=(("Small", 0.7), ("Medium", 1.0), ("Large", 1.3)),
                colours=("beige", "brown", "white"),
            ),
            kind(
                "HEPA Air Purifier",
                ("air-quality", "purifier"),
                (79, 299),
                "A true-HEPA air purifier",
                "Clears dust, pollen and pet dander from rooms up to 40 square metres.",
                features=(
                    ("quiet", "a 22 dB sleep mode"),
                    ("smart-home", "app control and air-quality alerts", 1.2),
                    ("washable-filter", "a washable pre-filter"),
                ),
                variants=(("", 1.0), ("Mini", 0.6), ("Max", 1.6)),
                colours=NEUTRAL,
            ),
            kind(
                "Cotton Bath Towel Set",
                ("bath", "towels", "cotton"),
                (25, 79),
                "A set of four heavyweight cotton bath towels",
                "Thick 600 gsm loops dry you quickly and stay soft wash after wash.",
                features=(
                    ("organic", "GOTS-certified organic cotton", 1.2),
                    ("hypoallergenic", "hypoallergenic, dye-fixed yarns"),
                ),
                variants=(("", 1.0), ("6-Piece", 1.4)),
                colours=("white", "grey", "navy", "green", "beige"),
            ),
            kind(
                "Wall Clock",
                ("decor", "clock"),
                (19, 79),
                "A silent-sweep wall clock",
                "Adds a clean focal point to a kitchen, office or living room without ticking.",
                features=(
                    ("wood", "a solid oak frame"),
                    ("minimalist", "a minimalist numberless face"),
                ),
                variants=(("", 1.0), ("Large", 1.3)),
                colours=("black", "white", "brown"),
            ),
        ),
    ),
    Category(
        "Kitchen",
        ("Oakridge", "Copperleaf", "Saltbox", "Ember & Oak", "Mezzo"),
        28,
        (
            kind(
                "Cast Iron Skillet",
                ("cookware", "cast-iron", "skillet"),
                (24, 89),
                "A heavy cast iron skillet",
                "Sears steak, bakes cornbread and goes straight from hob to oven to table.",
                features=(
                    ("pre-seasoned", "a pre-seasoned flaxseed finish"),
                    ("induction", "an induction-ready flat base"),
                    ("pour-spouts", "twin pour spouts"),
                ),
                variants=(("8in", 0.7), ("10in", 0.85), ("12in", 1.0), ("15in", 1.4)),
            ),
            kind(
                "Chef's Knife",
                ("knives", "cutlery"),
                (29, 189),
                "An 8-inch chef's knife",
                "A balanced workhorse for dicing onions, slicing herbs and breaking down "
                "a chicken.",
                features=(
                    ("stainless-steel", "a high-carbon stainless-steel blade"),
                    ("damascus", "67-layer Damascus cladding", 1.6),
                    ("wood", "a stabilised walnut handle"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("Classic", 1.1)),
            ),
            kind(
                "Nonstick Frying Pan",
                ("cookware", "nonstick", "frying-pan"),
                (19, 79),
                "A ceramic nonstick frying pan",
                "Eggs and pancakes slide right off with barely any oil.",
                features=(
                    ("pfas-free", "a PFAS-free ceramic coating"),
                    ("induction", "an induction-ready base"),
                    ("oven-safe", "an oven-safe handle rated to 220 °C"),
                ),
                variants=(("8in", 0.75), ("10in", 0.9), ("12in", 1.0)),
                colours=("black", "grey", "green", "beige"),
            ),
            kind(
                "Enameled Dutch Oven",
                ("cookware", "dutch-oven", "cast-iron", "enameled"),
                (49, 299),
                "An enameled cast iron Dutch oven",
                "Perfect for slow braises, winter stews and crusty no-knead bread.",
                features=(
                    ("induction", "an induction-ready base"),
                    ("oven-safe", "a lid and knob that are oven-safe to 260 °C"),
                ),
                variants=(("4qt", 0.8), ("5.5qt", 1.0), ("7qt", 1.25)),
                colours=("red", "blue", "green", "white", "orange", "black"),
            ),
            kind(
                "Pour-Over Coffee Maker",
                ("coffee", "brewing", "glass"),
                (19, 59),
                "A borosilicate glass pour-over coffee maker",
                "Brews a bright, clean cup for one or a full carafe for the table.",
                features=(
                    ("reusable-filter", "a reusable stainless-steel filter"),
                    ("wood", "a wooden collar with a leather tie"),
                ),
                variants=(("3-Cup", 0.8), ("6-Cup", 1.0), ("8-Cup", 1.3)),
            ),
            kind(
                "Burr Coffee Grinder",
                ("coffee", "grinder"),
                (39, 199),
                "A conical burr coffee grinder",
                "Dials in everything from espresso-fine to French-press-coarse.",
                features=(
                    ("electric", "a quiet electric motor"),
                    ("stainless-steel", "stainless-steel conical burrs"),
                    ("adjustable", "40 grind settings"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("Mini", 0.7)),
                colours=("black", "silver", "white"),
            ),
            kind(
                "Electric Kettle",
                ("kettle", "tea"),
                (25, 99),
                "A 1.7-litre electric kettle",
                "Boils water for tea, pour-over coffee and instant noodles in a few minutes.",
                features=(
                    ("stainless-steel", "a stainless-steel interior"),
                    ("temperature-control", "five presets for green, white and black tea", 1.4),
                    ("gooseneck", "a precision gooseneck spout"),
                ),
                variants=(("", 1.0), ("Pro", 1.4), ("Compact", 0.8)),
                colours=("black", "white", "silver", "green"),
            ),
            kind(
                "End-Grain Cutting Board",
                ("cutting-board", "wood"),
                (18, 69),
                "A thick end-grain cutting board",
                "Gentle on knife edges and big enough to carve a Sunday roast.",
                exclusive=(
                    ("walnut", "solid American walnut", 1.3),
                    ("maple", "hard rock maple"),
                    ("bamboo", "sustainable bamboo", 0.7),
                ),
                features=(
                    ("juice-groove", "a deep juice groove"),
                    ("reversible", "a reversible design"),
                ),
                variants=(("Small", 0.7), ("Large", 1.0), ("XL", 1.3)),
            ),
            kind(
                "Stand Mixer",
                ("baking", "mixer"),
                (149, 449),
                "A 5-quart tilt-head stand mixer",
                "Kneads bread dough, whips meringue and creams butter for cookies.",
                features=(
                    ("stainless-steel", "a stainless-steel bowl"),
                    ("attachments", "dough hook, whisk and paddle attachments"),
                ),
                variants=(("", 1.0), ("Pro", 1.4), ("Mini", 0.7)),
                colours=("red", "white", "black", "blue", "pink", "silver"),
            ),
            kind(
                "Baking Sheet Set",
                ("baking", "bakeware"),
                (19, 49),
                "A three-piece aluminium baking sheet set",
                "Rolled rims resist warping for cookies, sheet-pan dinners and roast veg.",
                features=(
                    ("nonstick", "a nonstick coating"),
                    ("dishwasher-safe", "dishwasher-safe construction"),
                ),
                variants=(("", 1.0), ("5-Piece", 1.4)),
            ),
            kind(
                "Glass Meal Prep Containers",
                ("storage", "meal-prep", "glass"),
                (19, 45),
                "A set of ten glass meal prep containers",
                "Go from fridge to microwave to dishwasher for a week of packed lunches.",
                features=(
                    ("bpa-free", "BPA-free snap-lock lids"),
                    ("oven-safe", "oven-safe tempered glass"),
                ),
                variants=(("", 1.0), ("20-Piece", 1.6)),
            ),
        ),
    ),
    Category(
        "Sports & Outdoors",
        ("Summitline", "Trailhawk", "Ridgeback", "Northpeak", "Kinetic"),
        28,
        (
            kind(
                "Yoga Mat",
                ("yoga", "fitness", "mat"),
                (19, 89),
                "A 6 mm cushioned yoga mat",
                "Cushions knees and wrists through flows, pilates and stretching.",
                features=(
                    ("non-slip", "a non-slip textured surface"),
                    ("eco-friendly", "natural tree rubber instead of PVC", 1.4),
                    ("alignment-lines", "printed alignment lines"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("Travel", 0.8), ("XL", 1.3)),
                colours=BRIGHT + ("black", "grey"),
            ),
            kind(
                "Adjustable Dumbbells",
                ("fitness", "weights", "strength"),
                (89, 399),
                "A pair of adjustable dumbbells",
                "Replaces a whole rack of weights in a corner of the spare room.",
                features=(
                    ("quick-adjust", "a dial that changes the weight in seconds"),
                    ("compact", "a compact storage tray"),
                ),
                variants=(("25lb", 0.7), ("50lb", 1.0), ("90lb", 1.6)),
            ),
            kind(
                "Resistance Bands Set",
                ("fitness", "resistance-bands", "strength"),
                (12, 39),
                "A set of five latex-free resistance bands",
                "Adds load to squats, rows and physio exercises at home or in a hotel room.",
                features=(
                    ("portable", "a travel pouch"),
                    ("door-anchor", "a door anchor and padded handles"),
                ),
                variants=(("", 1.0), ("Pro", 1.4)),
            ),
            kind(
                "Insulated Water Bottle",
                ("hydration", "bottle"),
                (15, 45),
                "A double-wall insulated water bottle",
                "Keeps drinks cold for 24 hours on hikes, runs and gym sessions.",
                features=(
                    ("stainless-steel", "18/8 stainless steel"),
                    ("bpa-free", "a BPA-free leak-proof lid"),
                    ("dishwasher-safe", "a dishwasher-safe powder coat"),
                ),
                variants=(("500ml", 0.8), ("750ml", 1.0), ("1L", 1.2)),
                colours=NEUTRAL + BRIGHT + ("navy",),
            ),
            kind(
                "Backpacking Tent",
                ("camping", "tent"),
                (79, 449),
                "A freestanding backpacking tent",
                "Pitches in minutes and packs small enough for multi-day treks.",
                features=(
                    ("waterproof", "a 3000 mm waterproof flysheet"),
                    ("lightweight", "an ultralight 1.6 kg packed weight", 1.4),
                ),
                variants=(
                    ("1-Person", 0.7),
                    ("2-Person", 1.0),
                    ("3-Person", 1.3),
                    ("4-Person", 1.6),
                ),
                colours=("green", "orange", "grey"),
            ),
            kind(
                "Hiking Backpack",
                ("hiking", "backpack"),
                (49, 229),
                "A hiking backpack with an adjustable harness",
                "A ventilated back panel and hip belt carry loads comfortably on long trails.",
                features=(
                    ("waterproof", "a waterproof rain cover"),
                    ("hydration", "a hydration-bladder sleeve"),
                    ("lightweight", "a lightweight ripstop shell"),
                ),
                variants=(("28L", 0.7), ("40L", 1.0), ("55L", 1.3)),
                colours=("green", "black", "orange", "blue", "grey"),
            ),
            kind(
                "Mummy Sleeping Bag",
                ("camping", "sleeping-bag"),
                (39, 249),
                "A mummy sleeping bag",
                "Rated for chilly spring and autumn nights under canvas.",
                features=(
                    ("down", "water-resistant duck down insulation", 1.6),
                    ("compressible", "a compression stuff sack"),
                ),
                variants=(("", 1.0), ("Summer", 0.7), ("Winter", 1.5)),
                colours=("green", "navy", "orange"),
            ),
            kind(
                "Trekking Poles",
                ("hiking", "trekking-poles"),
                (29, 129),
                "A pair of collapsible trekking poles",
                "Take the strain off knees on steep descents and river crossings.",
                features=(
                    ("carbon-fiber", "carbon-fiber shafts", 1.5),
                    ("cork-grip", "cork grips"),
                ),
                variants=(("", 1.0), ("Compact", 0.9), ("Trail", 1.1)),
            ),
            kind(
                "Foam Roller",
                ("fitness", "recovery"),
                (15, 49),
                "A high-density foam roller",
                "Loosens tight calves, quads and back muscles after training.",
                features=(
                    ("textured", "a textured massage surface"),
                    ("eco-friendly", "recyclable EVA foam"),
                ),
                variants=(("12in", 0.8), ("18in", 1.0), ("36in", 1.3)),
                colours=("black", "blue", "orange", "purple"),
            ),
            kind(
                "Speed Jump Rope",
                ("fitness", "cardio", "jump-rope"),
                (9, 29),
                "A ball-bearing speed jump rope",
                "Made for double-unders, boxing warm-ups and quick HIIT finishers.",
                features=(
                    ("adjustable", "a tangle-free adjustable cable"),
                    ("weighted", "removable handle weights"),
                ),
                variants=(("", 1.0), ("Pro", 1.5)),
                colours=("black", "red", "blue"),
            ),
        ),
    ),
    Category(
        "Books",
        (
            "Mara Quill",
            "Tobias Wren",
            "Elena Marsh",
            "Idris Cole",
            "June Halloway",
            "Santiago Reyes",
            "Priya Anand",
            "Felix Hartley",
            "Noor Aziz",
            "Clara Vance",
        ),
        28,
        (
            kind(
                "",
                ("fiction", "mystery", "thriller"),
                (10.99, 13.99),
                "A twisty small-town mystery novel",
                "Perfect for readers who like to solve the case before the final chapter.",
                exclusive=BOOK_FORMATS,
                titles=(
                    "The Lantern Street Murders",
                    "A Quiet Death in Wexham",
                    "The Ninth Key",
                    "Salt and Shadows",
                    "The Lighthouse Keeper's Secret",
                    "Murder at Marrow Hall",
                ),
            ),
            kind(
                "",
                ("fiction", "science-fiction"),
                (10.99, 14.99),
                "A sweeping science-fiction novel",
                "Big ideas about first contact, AI and the far future in a fast-paced story.",
                exclusive=BOOK_FORMATS,
                titles=(
                    "Echoes of the Outer Ring",
                    "The Last Signal from Kepler",
                    "Starfall Protocol",
                    "The Glass Colony",
                    "Orbit of Ash",
                ),
            ),
            kind(
                "",
                ("fiction", "fantasy"),
                (11.99, 14.99),
                "An epic fantasy novel",
                "The first book in a series of rival kingdoms, old magic and unlikely heroes.",
                exclusive=BOOK_FORMATS,
                titles=(
                    "The Ember Crown",
                    "Song of the Drowned Forest",
                    "The Witch of Hollowmere",
                    "A Throne of Salt and Iron",
                    "The Cartographer's Daughter",
                ),
            ),
            kind(
                "",
                ("cookbook", "cooking", "recipes"),
                (17.99, 21.99),
                "An illustrated cookbook of weeknight recipes",
                "Over 100 recipes with clear photos, shopping lists and make-ahead tips.",
                exclusive=BOOK_FORMATS,
                titles=(
                    "Salt, Fire & Cast Iron",
                    "The One-Pan Kitchen",
                    "Sourdough Sundays",
                    "Fresh from the Garden Table",
                ),
            ),
            kind(
                "",
                ("non-fiction", "self-help", "productivity"),
                (12.99, 15.99),
                "A practical guide to building better habits",
                "Short chapters and exercises make it easy to apply one idea each week.",
                exclusive=BOOK_FORMATS,
                titles=("Small Wins Daily", "The Focused Hour", "Deep Rest", "The Unhurried Mind"),
            ),
            kind(
                "",
                ("non-fiction", "history"),
                (13.99, 16.99),
                "A vivid narrative history",
                "Draws on letters and diaries to bring the ordinary lives of the period to life.",
                exclusive=BOOK_FORMATS,
                titles=(
                    "The Silk Road Merchants",
                    "Empires of the Tide",
                    "The Year the Rivers Froze",
                    "Lamps of the Industrial Age",
                ),
            ),
            kind(
                "",
                ("kids", "picture-book"),
                (7.99, 9.99),
                "A rhyming picture book for ages 2 to 6",
                "Bright illustrations and a gentle story make it a bedtime favourite.",
                exclusive=(
                    ("hardcover", "in a sturdy hardcover edition", 1.4),
                    ("board-book", "in a chunky board-book edition for little hands"),
                ),
                titles=(
                    "Bramble the Brave Little Fox",
                    "Goodnight, Busy Harbor",
                    "The Moon Who Couldn't Sleep",
                    "Pip and the Puddle Parade",
                ),
            ),
            kind(
                "",
                ("travel", "guidebook", "hiking"),
                (14.99, 17.99),
                "A pocket trail guide",
                "Includes maps, elevation profiles and tips on where to camp.",
                exclusive=BOOK_FORMATS,
                titles=(
                    "100 Day Hikes of the Pacific Northwest",
                    "The Lakeland Trail Companion",
                    "The Wild Camping Handbook",
                ),
            ),
        ),
    ),
    Category(
        "Beauty",
        ("Velvet & Vine", "Dewdrop", "Solenne", "Botanica Lane", "Kova"),
        24,
        (
            kind(
                "Vitamin C Serum",
                ("skincare", "serum", "vitamin-c"),
                (18, 89),
                "A brightening 15% vitamin C face serum",
                "Apply a few drops each morning under moisturizer and sunscreen to even out "
                "skin tone.",
                features=(
                    ("vegan", "a vegan, cruelty-free formula"),
                    ("organic", "organic botanical extracts", 1.2),
                    ("fragrance-free", "a fragrance-free base"),
                ),
                variants=(("15ml", 0.6), ("30ml", 1.0), ("50ml", 1.4)),
            ),
            kind(
                "Hyaluronic Moisturizer",
                ("skincare", "moisturizer", "hyaluronic"),
                (14, 69),
                "A lightweight hyaluronic acid gel moisturizer",
                "Sinks in quickly and keeps skin hydrated all day under makeup.",
                features=(
                    ("vegan", "a vegan, cruelty-free formula"),
                    ("fragrance-free", "a fragrance-free base"),
                    ("spf", "broad-spectrum SPF 30", 1.2),
                ),
                variants=(("50ml", 1.0), ("100ml", 1.5)),
            ),
            kind(
                "Satin Lipstick",
                ("makeup", "lipstick"),
                (9, 38),
                "A creamy satin-finish lipstick",
                "Glides on in one swipe and wears comfortably for up to eight hours.",
                features=(
                    ("vegan", "a vegan, cruelty-free formula"),
                    ("long-wear", "a transfer-resistant long-wear formula"),
                    ("nourishing", "shea butter to keep lips soft"),
                ),
                variants=(("", 1.0), ("Mini", 0.6)),
                colours=("red", "pink", "coral", "purple", "nude"),
            ),
            kind(
                "Eau de Parfum",
                ("fragrance", "perfume"),
                (39, 149),
                "An eau de parfum",
                "A long-lasting scent that moves easily from day to evening.",
                exclusive=(
                    ("floral", "notes of jasmine, peony and white musk"),
                    ("woody", "notes of cedar, vetiver and amber"),
                    ("citrus", "notes of bergamot, neroli and pink pepper"),
                    ("gourmand", "notes of vanilla, tonka and salted caramel"),
                ),
                features=(("vegan", "a vegan, cruelty-free formula"),),
                variants=(("30ml", 0.6), ("50ml", 1.0), ("100ml", 1.5)),
            ),
            kind(
                "Sulfate-Free Shampoo",
                ("haircare", "shampoo", "sulfate-free"),
                (9, 34),
                "A gentle sulfate-free shampoo",
                "Cleans without stripping colour-treated or curly hair.",
                features=(
                    ("organic", "organic aloe and chamomile"),
                    ("vegan", "a vegan, cruelty-free formula"),
                    ("argan-oil", "cold-pressed argan oil"),
                ),
                variants=(("250ml", 0.8), ("500ml", 1.0), ("1L", 1.5)),
            ),
            kind(
                "Sheet Mask Set",
                ("skincare", "masks"),
                (12, 29),
                "A set of ten hydrating sheet masks",
                "A 15-minute pick-me-up after flights or long days.",
                features=(
                    ("vegan", "plant-based vegan serums"),
                    ("hyaluronic", "hyaluronic acid and aloe"),
                ),
                variants=(("", 1.0), ("20-Pack", 1.7)),
            ),
            kind(
                "Makeup Brush Set",
                ("makeup", "brushes", "tools"),
                (15, 59),
                "A twelve-piece makeup brush set",
                "Covers foundation, contour, eyeshadow and blending in one roll-up case.",
                features=(
                    ("vegan", "soft synthetic vegan bristles"),
                    ("travel", "a vegan leather travel case"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("Travel", 0.7)),
                colours=("black", "pink", "white"),
            ),
            kind(
                "Mineral Sunscreen SPF 50",
                ("skincare", "sunscreen", "spf"),
                (9, 39),
                "A mineral SPF 50 sunscreen",
                "Daily protection for face and body that doesn't leave a white cast.",
                features=(
                    ("reef-safe", "a reef-safe zinc formula"),
                    ("waterproof", "80 minutes of water resistance"),
                    ("fragrance-free", "a fragrance-free base"),
                ),
                variants=(("50ml", 0.8), ("100ml", 1.0), ("200ml", 1.5)),
            ),
        ),
    ),
    Category(
        "Toys & Games",
        ("Pebble & Pine", "Tinkerly", "Brightbox", "Whirlwind", "Meeple Forge"),
        24,
        (
            kind(
                "Board Game",
                ("board-game", "strategy"),
                (24, 69),
                "A strategy board game for 2 to 5 players",
                "Games run 60 to 90 minutes with enough depth to reward repeat plays.",
                exclusive=(
                    ("cooperative", "played cooperatively against the game"),
                    ("competitive", "played head-to-head for the highest score"),
                ),
                features=(("family", "with rules simple enough for ages 10 and up"),),
                titles=(
                    "Starport Tycoon",
                    "Kingdoms of Ember",
                    "Iron Rails",
                    "Harvest Valley",
                    "Tidewater Traders",
                    "Skyward Guilds",
                ),
                by="from",
            ),
            kind(
                "Jigsaw Puzzle",
                ("puzzle", "jigsaw"),
                (14, 29),
                "A jigsaw puzzle on thick recycled board",
                "A relaxing project for a rainy weekend, with a poster for reference.",
                exclusive=(
                    ("landscape", "an alpine lake landscape"),
                    ("art", "a vintage botanical print"),
                    ("map", "an illustrated world map"),
                ),
                variants=(("500 Pieces", 0.8), ("1000 Pieces", 1.0), ("2000 Pieces", 1.4)),
            ),
            kind(
                "Wooden Building Blocks",
                ("kids", "wooden", "blocks", "educational"),
                (19, 59),
                "A set of 60 beechwood building blocks",
                "Encourages open-ended play and early maths skills for ages 1 to 5.",
                features=(
                    ("non-toxic", "non-toxic water-based paints"),
                    ("storage", "a drawstring storage bag"),
                ),
                variants=(("", 1.0), ("100-Piece", 1.5)),
            ),
            kind(
                "STEM Robot Kit",
                ("kids", "stem", "educational", "robotics"),
                (39, 129),
                "A build-your-own robot kit",
                "Kids aged 8 and up assemble it, then code new moves in a drag-and-drop app.",
                features=(
                    ("coding", "block-based coding lessons"),
                    ("rechargeable", "a rechargeable battery"),
                ),
                variants=(("", 1.0), ("Explorer", 1.2), ("Pro", 1.6)),
            ),
            kind(
                "Plush",
                ("kids", "plush"),
                (9, 35),
                "A super-soft plush toy",
                "Huggable, machine-washable and safe from birth.",
                features=(
                    ("organic", "an organic cotton cover"),
                    ("weighted", "a gently weighted body for calming cuddles", 1.3),
                ),
                variants=(
                    ("Bear", 1.0),
                    ("Fox", 1.0),
                    ("Bunny", 1.0),
                    ("Dinosaur", 1.1),
                    ("Whale", 1.0),
                ),
                colours=("brown", "grey", "pink", "blue", "yellow"),
            ),
            kind(
                "Remote Control Car",
                ("kids", "rc", "outdoor"),
                (29, 99),
                "A 1:16 scale off-road remote control car",
                "Rubber tyres and spring suspension handle grass, gravel and dirt.",
                features=(
                    ("rechargeable", "two rechargeable batteries"),
                    ("waterproof", "a splash-proof chassis"),
                ),
                variants=(("", 1.0), ("Turbo", 1.3), ("Monster", 1.4)),
                colours=("red", "blue", "green", "orange", "black"),
            ),
            kind(
                "Card Game",
                ("card-game", "party"),
                (9, 25),
                "A fast party card game for 3 to 8 players",
                "Rounds take 15 minutes, so it works for family nights and game-night warm-ups.",
                exclusive=(("family", "with rules simple enough for ages 7 and up"),),
                titles=("Quick Draw Llamas", "Sock Goblins", "Dragon Dice Dash", "Pickle Panic"),
                by="from",
            ),
        ),
    ),
    Category(
        "Clothing",
        ("Harbor & Hale", "Wrenfield", "Coastline Co.", "Marlowe & Moss", "Fernwood"),
        28,
        (
            kind(
                "Crewneck T-Shirt",
                ("tops", "t-shirt", "cotton"),
                (12, 39),
                "A midweight crewneck T-shirt",
                "A relaxed everyday fit that layers well under jackets and overshirts.",
                features=(
                    ("organic", "GOTS-certified organic cotton", 1.2),
                    ("pre-shrunk", "a pre-shrunk, garment-dyed finish"),
                ),
                colours=NEUTRAL + ("navy", "green", "red", "yellow", "pink", "beige"),
            ),
            kind(
                "Merino Wool Sweater",
                ("knitwear", "sweater", "wool"),
                (59, 169),
                "A fine-gauge merino wool sweater",
                "Warm without bulk and naturally odour-resistant for travel.",
                features=(
                    ("machine-washable", "a machine-washable finish"),
                    ("ethical", "ethically sourced, mulesing-free wool"),
                ),
                colours=EARTHY + ("black", "red"),
            ),
            kind(
                "Packable Rain Jacket",
                ("outerwear", "jacket", "waterproof"),
                (59, 249),
                "A lightweight hooded rain jacket",
                "Packs into its own pocket and sheds sudden showers on hikes or commutes.",
                features=(
                    ("breathable", "a breathable 2.5-layer membrane"),
                    ("recycled", "recycled nylon"),
                ),
                colours=("black", "navy", "green", "yellow", "red", "orange"),
            ),
            kind(
                "Running Shoes",
                ("footwear", "running", "shoes"),
                (59, 179),
                "Cushioned neutral running shoes",
                "Built for daily training miles on road and light trail.",
                features=(
                    ("breathable", "an engineered breathable mesh upper"),
                    ("lightweight", "a lightweight foam midsole"),
                    ("reflective", "reflective heel tabs"),
                ),
                colours=("black", "white", "blue", "orange", "grey", "pink"),
            ),
            kind(
                "Leather Sneakers",
                ("footwear", "sneakers", "leather"),
                (69, 199),
                "Minimal low-top leather sneakers",
                "A clean silhouette that goes with jeans, chinos or a suit.",
                features=(
                    ("handmade", "hand-stitched cupsoles", 1.3),
                    ("cork", "a cushioned cork footbed"),
                ),
                colours=("white", "black", "beige", "navy"),
            ),
            kind(
                "Slim Fit Jeans",
                ("denim", "jeans"),
                (39, 129),
                "Slim-fit jeans in 12 oz denim",
                "They soften and fade to your shape the more you wear them.",
                features=(
                    ("stretch", "a touch of stretch for comfort"),
                    ("organic", "organic cotton denim"),
                ),
                colours=("blue", "black", "grey"),
            ),
            kind(
                "Yoga Leggings",
                ("activewear", "leggings", "yoga"),
                (25, 89),
                "High-waisted yoga leggings",
                "Squat-proof, with a hidden waistband pocket for keys or a card.",
                features=(
                    ("moisture-wicking", "a moisture-wicking fabric"),
                    ("recycled", "recycled polyester"),
                ),
                colours=("black", "navy", "green", "purple", "pink", "grey"),
            ),
            kind(
                "Wool Beanie",
                ("hats", "beanie", "wool"),
                (15, 39),
                "A ribbed wool beanie",
                "A snug cuffed fit for cold commutes and winter hikes.",
                features=(
                    ("recycled", "recycled wool yarn"),
                    ("fleece-lined", "a soft fleece lining"),
                ),
                colours=EARTHY + ("orange", "yellow", "red", "black"),
            ),
        ),
        colour_in_name=True,
    ),
    Category(
        "Garden",
        ("Greenhaven", "Rootstock", "Mossbury", "Fernhill", "Sproutwell"),
        26,
        (
            kind(
                "Cedar Raised Garden Bed",
                ("planters", "raised-bed", "wood"),
                (49, 199),
                "A raised garden bed in rot-resistant cedar",
                "Fill it with soil for vegetables, herbs or flowers on a patio or lawn.",
                features=(
                    ("easy-assembly", "tool-free slot-together assembly"),
                    ("untreated", "untreated, food-safe timber"),
                ),
                variants=(("2x4ft", 0.7), ("4x4ft", 1.0), ("4x8ft", 1.5)),
            ),
            kind(
                "Ceramic Planter",
                ("planters", "pots", "ceramic"),
                (15, 69),
                "A glazed ceramic planter with a drainage hole",
                "Suits houseplants such as monstera, snake plants and ferns.",
                features=(
                    ("saucer", "a matching drip saucer"),
                    ("frost-resistant", "a frost-resistant glaze for indoor or outdoor use"),
                ),
                variants=(("6in", 0.6), ("8in", 0.8), ("10in", 1.0), ("12in", 1.3)),
                colours=("white", "green", "beige", "blue", "pink", "black", "yellow"),
            ),
            kind(
                "Expandable Garden Hose",
                ("watering", "hose"),
                (25, 79),
                "An expandable garden hose",
                "Stretches to three times its length to water beds and wash the car, then "
                "shrinks back for storage.",
                features=(
                    ("spray-nozzle", "a ten-pattern spray nozzle"),
                    ("kink-free", "a kink-free latex core"),
                ),
                variants=(("50ft", 0.8), ("75ft", 1.0), ("100ft", 1.3)),
                colours=("green", "blue", "black"),
            ),
            kind(
                "Bypass Pruning Shears",
                ("tools", "pruners"),
                (15, 49),
                "Bypass pruning shears",
                "Make clean cuts on roses, shrubs and stems up to 2 cm thick.",
                features=(
                    ("stainless-steel", "a stainless-steel blade"),
                    ("ergonomic", "ergonomic cushioned grips"),
                ),
                variants=(("", 1.0), ("Pro", 1.5), ("Compact", 0.8)),
                colours=("red", "orange", "green", "black"),
            ),
            kind(
                "Seed Starter Kit",
                ("seeds", "seedlings", "organic"),
                (12, 39),
                "A seed starter kit with a humidity dome",
                "Germinate tomatoes, peppers and herbs on a sunny windowsill.",
                features=(
                    ("heirloom", "twelve packets of heirloom seeds"),
                    ("biodegradable", "biodegradable peat-free pots"),
                ),
                variants=(("", 1.0), ("Herb", 0.9), ("Veggie", 1.1), ("Flower", 1.0)),
            ),
            kind(
                "Tumbling Compost Bin",
                ("composting", "eco-friendly"),
                (39, 129),
                "A dual-chamber tumbling compost bin",
                "Turns kitchen scraps and yard waste into rich compost in a few weeks.",
                features=(("recycled", "UV-resistant recycled plastic"),),
                variants=(("", 1.0), ("Mini", 0.6), ("XL", 1.4)),
                colours=("black", "green"),
            ),
            kind(
                "Solar Path Lights",
                ("lighting", "solar", "led", "outdoor"),
                (19, 59),
                "Solar-powered LED path lights",
                "They charge by day and switch on automatically at dusk along paths and borders.",
                features=(
                    ("waterproof", "an IP65 waterproof housing"),
                    ("warm-white", "a warm-white 3000 K glow"),
                ),
                variants=(("6-Pack", 0.8), ("8-Pack", 1.0), ("12-Pack", 1.4)),
                colours=("black", "silver"),
            ),
            kind(
                "Watering Can",
                ("watering", "watering-can"),
                (14, 39),
                "A long-spout watering can",
                "Reaches the back of borders and plant shelves without splashing.",
                features=(
                    ("rust-proof", "a rust-proof galvanised finish"),
                    ("brass-rose", "a removable brass rose"),
                ),
                variants=(("1L", 0.7), ("5L", 1.0), ("9L", 1.3)),
                colours=("grey", "green", "yellow", "blue"),
            ),
            kind(
                "Organic Potting Mix",
                ("soil", "organic"),
                (9, 29),
                "A peat-free organic potting mix",
                "Blended with compost and perlite for healthy container plants and seedlings.",
                features=(("slow-release", "a slow-release plant food"),),
                variants=(("8qt", 0.7), ("16qt", 1.0), ("1cu ft", 1.3)),
            ),
        ),
    ),
    Category(
        "Office",
        ("Inkwell", "Deskcraft", "Paperloom", "Ledger & Co.", "Quorum"),
        24,
        (
            kind(
                "LED Desk Lamp",
                ("lighting", "desk", "led"),
                (25, 99),
                "An adjustable LED desk lamp",
                "Lights a keyboard and notes evenly without glare on the monitor.",
                features=(
                    ("dimmable", "five colour temperatures and stepless dimming"),
                    ("usb-charging", "a USB-C charging port in the base"),
                    ("eye-care", "flicker-free eye-care LEDs"),
                ),
                variants=(("", 1.0), ("Pro", 1.4), ("Clamp", 1.1), ("Mini", 0.7)),
                colours=("black", "white", "silver", "grey"),
            ),
            kind(
                "Ergonomic Office Chair",
                ("chair", "ergonomic"),
                (149, 549),
                "An ergonomic office chair with adjustable lumbar support",
                "Adjustable armrests and seat depth keep you comfortable through long workdays.",
                features=(
                    ("headrest", "an adjustable headrest"),
                    ("breathable", "a breathable mesh back"),
                ),
                variants=(("", 1.0), ("Pro", 1.4), ("Executive", 1.6)),
                colours=NEUTRAL,
            ),
            kind(
                "Standing Desk Converter",
                ("desk", "standing-desk", "ergonomic"),
                (99, 349),
                "A sit-stand desk converter",
                "Sits on an existing desk and lifts a monitor and keyboard to standing height "
                "in seconds.",
                features=(
                    ("gas-spring", "a smooth gas-spring lift"),
                    ("wood", "a walnut-veneer worktop", 1.2),
                ),
                variants=(("32in", 0.9), ("36in", 1.0), ("42in", 1.2)),
                colours=("black", "white", "brown"),
            ),
            kind(
                "Dotted Notebook",
                ("notebook", "stationery", "paper"),
                (9, 29),
                "An A5 dotted notebook with 160 numbered pages",
                "Thick 120 gsm paper handles fountain pens without ghosting, ideal for bullet "
                "journaling.",
                features=(
                    ("hardcover", "a linen hardcover"),
                    ("lay-flat", "a lay-flat stitched binding"),
                    ("recycled", "recycled paper"),
                ),
                variants=(("", 1.0), ("Pocket", 0.7), ("2-Pack", 1.7)),
                colours=("black", "navy", "green", "red", "yellow", "pink"),
            ),
            kind(
                "Fountain Pen",
                ("pens", "stationery", "writing"),
                (19, 129),
                "A fountain pen with a polished steel nib",
                "Writes smoothly for journaling, letters and everyday notes.",
                features=(
                    ("refillable", "a refillable piston converter"),
                    ("brass", "a solid brass barrel", 1.5),
                    ("gift-box", "a presentation gift box"),
                ),
                variants=(("Fine", 1.0), ("Medium", 1.0), ("Broad", 1.05)),
                colours=("black", "navy", "red", "green", "silver"),
            ),
            kind(
                "Monitor Stand",
                ("desk", "monitor-stand", "organization"),
                (25, 89),
                "A monitor stand riser",
                "Raises the screen to eye level and frees up space for a keyboard underneath.",
                features=(
                    ("bamboo", "a solid bamboo shelf"),
                    ("usb-hub", "a built-in USB hub", 1.3),
                    ("storage", "a slim storage drawer"),
                ),
                variants=(("", 1.0), ("Dual", 1.5)),
                colours=("black", "white", "brown"),
            ),
            kind(
                "Desk Organizer",
                ("organization", "desk", "storage"),
                (15, 49),
                "A modular desk organizer",
                "Corrals pens, sticky notes and cables on a busy desk.",
                features=(
                    ("bamboo", "sustainable bamboo"),
                    ("wireless", "a built-in wireless phone charger", 1.6),
                ),
                variants=(("", 1.0), ("Deluxe", 1.4)),
                colours=("black", "white", "brown"),
            ),
            kind(
                "Vertical Ergonomic Mouse",
                ("mouse", "ergonomic", "wireless"),
                (19, 69),
                "A vertical ergonomic mouse",
                "A handshake grip eases wrist strain on long days of spreadsheets and email.",
                features=(
                    ("rechargeable", "a rechargeable battery"),
                    ("silent-click", "silent click buttons"),
                    ("bluetooth", "Bluetooth plus USB receiver pairing"),
                ),
                variants=(("", 1.0), ("Pro", 1.4), ("Small", 0.9)),
                colours=NEUTRAL,
            ),
            kind(
                "2027 Weekly Planner",
                ("planner", "stationery"),
                (14, 35),
                "A dated 2027 weekly planner",
                "A week-on-two-pages layout with monthly goals and habit trackers.",
                features=(
                    ("vegan", "a vegan leather cover"),
                    ("lay-flat", "a lay-flat binding"),
                ),
                variants=(("A5", 1.0), ("Pocket", 0.7)),
                colours=("black", "pink", "green", "navy", "beige"),
            ),
        ),
    ),
    Category(
        "Pet Supplies",
        ("Barkley & Co.", "Whisker Lane", "Tailwind", "Furwell", "Kibble Creek"),
        25,
        (
            kind(
                "Orthopedic Dog Bed",
                ("dog", "bed", "orthopedic"),
                (29, 149),
                "An orthopedic memory-foam dog bed",
                "Supports older joints and has a bolster for dogs who like to lean.",
                features=(
                    ("machine-washable", "a removable machine-washable cover"),
                    ("waterproof", "a waterproof liner"),
                ),
                variants=(("Small", 0.6), ("Medium", 0.8), ("Large", 1.0), ("XL", 1.3)),
                colours=("grey", "brown", "navy", "beige", "green"),
            ),
            kind(
                "Cat Tree",
                ("cat", "furniture", "scratching"),
                (49, 199),
                "A multi-level cat tree with sisal-wrapped posts",
                "Perches and a hideaway keep indoor cats busy and off the sofa.",
                features=(
                    ("hammock", "a hanging hammock"),
                    ("machine-washable", "removable, washable cushions"),
                ),
                variants=(("", 1.0), ("Tower", 1.5), ("Mini", 0.6)),
                colours=("grey", "beige", "brown"),
            ),
            kind(
                "Grain-Free Dog Food",
                ("dog", "food", "grain-free"),
                (24, 79),
                "Grain-free dry dog food",
                "Real meat first, with sweet potato and peas for sensitive stomachs.",
                exclusive=(
                    ("salmon", "wild-caught salmon as the first ingredient"),
                    ("chicken", "free-range chicken as the first ingredient"),
                    ("lamb", "pasture-raised lamb as the first ingredient", 1.1),
                ),
                variants=(("4lb", 0.35), ("12lb", 0.7), ("24lb", 1.0)),
            ),
            kind(
                "Clumping Cat Litter",
                ("cat", "litter"),
                (12, 34),
                "Clumping clay cat litter",
                "Forms tight clumps for easy scooping and lasts up to a week per tray.",
                exclusive=(
                    ("unscented", "an unscented, dust-free formula"),
                    ("lavender", "a light lavender scent"),
                ),
                variants=(("10lb", 0.6), ("20lb", 1.0), ("40lb", 1.6)),
            ),
            kind(
                "Chew Toy",
                ("dog", "toys", "chew"),
                (7, 22),
                "A tough natural-rubber chew toy",
                "Stands up to power chewers and can be stuffed with treats.",
                features=(
                    ("non-toxic", "non-toxic, food-safe materials"),
                    ("dishwasher-safe", "a dishwasher-safe design"),
                ),
                variants=(("Small", 0.8), ("Medium", 1.0), ("Large", 1.2)),
                colours=("red", "blue", "orange", "green", "yellow"),
            ),
            kind(
                "Interactive Cat Toy",
                ("cat", "toys", "interactive"),
                (9, 29),
                "An interactive feather wand and laser toy",
                "Triggers a cat's hunting instinct for short, energetic play sessions.",
                features=(
                    ("rechargeable", "a USB-rechargeable laser"),
                    ("catnip", "a catnip-filled refill"),
                ),
                variants=(("", 1.0), ("Deluxe", 1.4)),
            ),
            kind(
                "Dog Leash",
                ("dog", "leash", "walking", "reflective"),
                (12, 39),
                "A 1.8 m padded dog leash",
                "Reflective stitching catches headlights on early-morning and evening walks.",
                features=(("hands-free", "a hands-free waist clip"),),
                variants=(("", 1.0), ("Long Line", 1.3)),
                colours=("red", "blue", "black", "green", "orange", "pink"),
            ),
            kind(
                "Pet Grooming Brush",
                ("grooming", "brush"),
                (9, 29),
                "A self-cleaning slicker brush",
                "Removes loose undercoat from dogs and cats; one click releases the hair.",
                features=(("ergonomic", "an anti-slip ergonomic handle"),),
                variants=(("", 1.0), ("Pro", 1.4)),
                colours=("grey", "blue", "pink"),
            ),
            kind(
                "Automatic Pet Feeder",
                ("feeder", "smart-home"),
                (49, 149),
                "An automatic pet feeder with a 4-litre hopper",
                "Schedules up to six meals a day for cats and small dogs.",
                features=(
                    ("camera", "a built-in HD camera", 1.4),
                    ("app-control", "app scheduling over Wi-Fi"),
                ),
                variants=(("", 1.0), ("Duo", 1.4)),
                colours=("white", "black"),
            ),
        ),
    ),
    Category(
        "Health",
        ("Wellspring", "Purevita", "Calmora", "Ironroot", "Nordwell"),
        26,
        (
            kind(
                "Whey Protein Powder",
                ("protein", "supplements", "fitness"),
                (24, 69),
                "A whey isolate protein powder with 25 g of protein per scoop",
                "Mixes smoothly with water or milk after training.",
                exclusive=(
                    ("vanilla", "a vanilla bean flavour"),
                    ("chocolate", "a double chocolate flavour"),
                    ("unflavored", "an unflavoured blend for smoothies and baking"),
                ),
                features=(("grass-fed", "whey from grass-fed cows", 1.2),),
                variants=(("1lb", 0.5), ("2lb", 1.0), ("5lb", 2.0)),
            ),
            kind(
                "Daily Multivitamin",
                ("vitamins", "supplements"),
                (12, 39),
                "A daily multivitamin with 23 vitamins and minerals",
                "One small tablet a day with food, sized for easy swallowing.",
                features=(
                    ("vegan", "a vegan formula"),
                    ("gluten-free", "a gluten-free formula"),
                ),
                variants=(("60ct", 0.7), ("120ct", 1.0), ("Women's", 1.1), ("Men's", 1.1)),
            ),
            kind(
                "Massage Gun",
                ("recovery", "massage", "fitness"),
                (59, 249),
                "A percussive massage gun",
                "Works into sore quads, calves and shoulders after hard sessions.",
                features=(
                    ("quiet", "a whisper-quiet brushless motor"),
                    ("long-battery", "six hours of battery life"),
                    ("attachments", "six interchangeable heads"),
                ),
                variants=(("", 1.0), ("Mini", 0.6), ("Pro", 1.5)),
                colours=("black", "grey", "white", "green"),
            ),
            kind(
                "Sonic Electric Toothbrush",
                ("oral-care", "toothbrush"),
                (29, 149),
                "A sonic electric toothbrush",
                "A two-minute timer and pressure sensor help you brush properly.",
                features=(
                    ("rechargeable", "a two-week rechargeable battery"),
                    ("travel", "a hard travel case"),
                ),
                variants=(("", 1.0), ("Pro", 1.6), ("Slim", 0.8)),
                colours=("white", "black", "pink", "blue"),
            ),
            kind(
                "Infrared Thermometer",
                ("thermometer", "medical"),
                (12, 39),
                "A no-touch infrared thermometer",
                "Takes a forehead reading in one second, handy for feverish kids at night.",
                features=(
                    ("baby", "a silent mode for sleeping babies"),
                    ("memory", "a 30-reading memory"),
                ),
                variants=(("", 1.0), ("Pro", 1.4)),
            ),
            kind(
                "Blood Pressure Monitor",
                ("monitor", "medical"),
                (29, 89),
                "An upper-arm blood pressure monitor",
                "Clinically validated readings at home on a clear backlit display.",
                features=(
                    ("app-control", "Bluetooth sync to a health app", 1.3),
                    ("memory", "a 120-reading memory for two users"),
                ),
                variants=(("", 1.0), ("Plus", 1.3)),
            ),
            kind(
                "Essential Oil Diffuser",
                ("aromatherapy", "diffuser", "sleep"),
                (25, 69),
                "An ultrasonic essential oil diffuser",
                "Runs quietly through the night and shuts off when the water runs out.",
                features=(
                    ("led", "a seven-colour ambient LED light"),
                    ("wood", "a light wood-grain cover"),
                ),
                variants=(("", 1.0), ("Large", 1.4)),
                colours=("white", "brown", "grey"),
            ),
            kind(
                "Contoured Sleep Mask",
                ("sleep", "eye-mask"),
                (9, 29),
                "A contoured sleep mask",
                "Blocks out light completely without pressing on the eyes.",
                features=(
                    ("silk", "a mulberry silk cover", 1.5),
                    ("travel", "a travel pouch"),
                ),
                colours=("black", "pink", "navy", "grey", "purple"),
            ),
            kind(
                "Baby Care Kit",
                ("baby", "grooming", "kids"),
                (15, 39),
                "A 12-piece baby care kit",
                "Includes a nail clipper, comb, brush and nasal aspirator for the first year.",
                features=(
                    ("bpa-free", "BPA-free parts"),
                    ("travel", "a zip travel case"),
                ),
                colours=("white", "green", "yellow", "pink", "blue"),
            ),
            kind(
                "First Aid Kit",
                ("first-aid", "safety", "camping"),
                (15, 49),
                "A 150-piece first aid kit",
                "Compact enough for a glovebox, backpack or kitchen drawer.",
                features=(("waterproof", "a waterproof case"),),
                variants=(("", 1.0), ("Travel", 0.7), ("Family", 1.4)),
                colours=("red", "orange"),
            ),
        ),
    ),
)

# The two products used by the documented worked example; they must exist exactly like this.
WORKED_EXAMPLES: tuple[dict[str, Any], ...] = (
    {
        "name": "Wireless Earbuds",
        "description": "True-wireless earbuds with Bluetooth pairing and a pocketable charging "
        "case. A simple, reliable pick for commutes, workouts and calls.",
        "category": "Electronics",
        "price": "59.99",
        "quantity": 120,
        "tags": ["electronics", "audio", "earbuds", "wireless"],
        "created_at": datetime(2026, 3, 15, 9, 0, 0, tzinfo=UTC),
    },
    {
        "name": "Desk Lamp",
        "description": "An adjustable LED desk lamp for home offices and bedside reading. "
        "Energy-efficient LEDs give even, flicker-free light.",
        "category": "Home",
        "price": "34.99",
        "quantity": 85,
        "tags": ["home", "lighting", "desk", "led"],
        "created_at": datetime(2026, 4, 2, 10, 30, 0, tzinfo=UTC),
    },
)

# --------------------------------------------------------------------------------------------
# Personas
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    """A shopper archetype: favourite categories (weights), favourite tags, price level.

    ``searches`` pairs a query text with the tags a product needs to match it.
    """

    key: str
    categories: Mapping[str, float]
    tags: frozenset[str]
    price_level: str  # "budget" | "mid" | "premium"
    searches: tuple[tuple[str, tuple[str, ...]], ...]


def persona(
    key: str,
    categories: Mapping[str, float],
    tags: Sequence[str],
    price_level: str,
    searches: Sequence[tuple[str, Sequence[str]]],
) -> Persona:
    return Persona(
        key,
        dict(categories),
        frozenset(tags),
        price_level,
        tuple((text, tuple(needed)) for text, needed in searches),
    )


PERSONAS: tuple[Persona, ...] = (
    persona(
        "audiophile",
        {"Electronics": 3.0, "Accessories": 1.5},
        ("audio", "headphones", "earbuds", "speaker", "hi-fi", "noise-cancelling", "wireless"),
        "premium",
        (
            ("wireless headphones", ("headphones",)),
            ("noise cancelling earbuds", ("earbuds",)),
            ("bluetooth speaker", ("speaker",)),
            ("hi-fi headphones", ("hi-fi",)),
            ("headphone stand", ("stand",)),
        ),
    ),
    persona(
        "home_chef",
        {"Kitchen": 3.0, "Home": 1.0, "Books": 0.6},
        ("cookware", "cast-iron", "knives", "coffee", "baking", "cookbook", "stainless-steel"),
        "mid",
        (
            ("cast iron skillet", ("cast-iron",)),
            ("chef knife", ("knives",)),
            ("coffee grinder", ("grinder",)),
            ("dutch oven", ("dutch-oven",)),
            ("cookbook", ("cookbook",)),
        ),
    ),
    persona(
        "fitness_fan",
        {"Sports & Outdoors": 3.0, "Health": 1.5, "Clothing": 1.0},
        ("fitness", "yoga", "running", "hydration", "protein", "recovery", "activewear"),
        "mid",
        (
            ("yoga mat", ("yoga", "mat")),
            ("adjustable dumbbells", ("weights",)),
            ("protein powder", ("protein",)),
            ("running shoes", ("running",)),
            ("massage gun", ("massage",)),
        ),
    ),
    persona(
        "outdoor_adventurer",
        {"Sports & Outdoors": 3.0, "Clothing": 1.2, "Accessories": 0.8, "Health": 0.4},
        ("camping", "hiking", "waterproof", "tent", "outerwear", "first-aid", "lightweight"),
        "premium",
        (
            ("camping tent", ("tent",)),
            ("waterproof jacket", ("outerwear",)),
            ("hiking backpack", ("hiking", "backpack")),
            ("sleeping bag", ("sleeping-bag",)),
            ("trekking poles", ("trekking-poles",)),
        ),
    ),
    persona(
        "bookworm",
        {"Books": 3.5, "Office": 0.8, "Electronics": 0.4, "Home": 0.4},
        ("fiction", "mystery", "fantasy", "science-fiction", "e-reader", "reading", "candle"),
        "budget",
        (
            ("mystery novel", ("mystery",)),
            ("fantasy books", ("fantasy",)),
            ("sci-fi paperback", ("science-fiction",)),
            ("e-reader", ("e-reader",)),
            ("reading lamp", ("reading", "lamp")),
        ),
    ),
    persona(
        "gamer",
        {"Electronics": 2.5, "Toys & Games": 1.5, "Accessories": 1.0},
        ("gaming", "rgb", "keyboard", "mouse", "headset", "board-game", "strategy"),
        "mid",
        (
            ("mechanical keyboard", ("keyboard",)),
            ("gaming mouse", ("gaming", "mouse")),
            ("gaming headset", ("headset",)),
            ("strategy board game", ("board-game",)),
            ("rgb keyboard", ("keyboard", "rgb")),
        ),
    ),
    persona(
        "new_parent",
        {"Toys & Games": 2.5, "Health": 1.2, "Home": 1.0, "Books": 0.6},
        ("kids", "baby", "educational", "wooden", "plush", "picture-book", "organic"),
        "mid",
        (
            ("wooden toys", ("wooden",)),
            ("baby monitor", ("baby", "monitor")),
            ("picture book", ("picture-book",)),
            ("stem toys", ("stem",)),
            ("plush toy", ("plush",)),
        ),
    ),
    persona(
        "remote_worker",
        {"Office": 3.0, "Electronics": 1.3, "Home": 0.8, "Accessories": 0.6},
        ("desk", "ergonomic", "lighting", "led", "notebook", "webcam", "standing-desk"),
        "mid",
        (
            ("ergonomic chair", ("chair",)),
            ("standing desk", ("standing-desk",)),
            ("desk lamp", ("desk", "lighting")),
            ("webcam", ("webcam",)),
            ("dotted notebook", ("notebook",)),
        ),
    ),
    persona(
        "beauty_lover",
        {"Beauty": 3.5, "Health": 1.0, "Clothing": 0.5},
        ("skincare", "serum", "organic", "vegan", "fragrance", "makeup", "spf"),
        "premium",
        (
            ("vitamin c serum", ("serum",)),
            ("vegan lipstick", ("lipstick",)),
            ("sunscreen spf 50", ("sunscreen",)),
            ("perfume", ("perfume",)),
            ("sulfate free shampoo", ("shampoo",)),
        ),
    ),
    persona(
        "gardener",
        {"Garden": 3.5, "Home": 0.8, "Kitchen": 0.4, "Books": 0.3},
        ("planters", "watering", "organic", "tools", "seeds", "composting", "solar"),
        "budget",
        (
            ("raised garden bed", ("raised-bed",)),
            ("pruning shears", ("pruners",)),
            ("organic potting soil", ("soil",)),
            ("ceramic planter", ("pots",)),
            ("seed starter kit", ("seeds",)),
        ),
    ),
    persona(
        "pet_owner",
        {"Pet Supplies": 3.5, "Home": 0.5, "Garden": 0.3},
        ("dog", "cat", "toys", "bed", "grain-free", "grooming", "leash"),
        "budget",
        (
            ("dog bed", ("dog", "bed")),
            ("cat tree", ("cat", "furniture")),
            ("grain free dog food", ("grain-free",)),
            ("cat toys", ("cat", "toys")),
            ("dog leash", ("leash",)),
        ),
    ),
    persona(
        "style_maven",
        {"Clothing": 3.0, "Accessories": 2.0, "Beauty": 0.8},
        ("leather", "cotton", "wool", "sneakers", "jacket", "sunglasses", "wallet"),
        "premium",
        (
            ("leather sneakers", ("sneakers",)),
            ("merino sweater", ("sweater",)),
            ("polarized sunglasses", ("sunglasses",)),
            ("leather wallet", ("wallet",)),
            ("slim jeans", ("jeans",)),
        ),
    ),
)
NEWCOMER = persona("newcomer", {}, (), "mid", ())

FIRST_NAMES = (
    "Ava",
    "Liam",
    "Maya",
    "Noah",
    "Zoë",
    "Ethan",
    "Priya",
    "Lucas",
    "Sofia",
    "Mateo",
    "Chloe",
    "Omar",
    "Hana",
    "Jonas",
    "Amara",
    "Diego",
    "Nora",
    "Kenji",
    "Elena",
    "Samuel",
    "Isla",
    "Ravi",
    "Léa",
    "Theo",
    "Fatima",
    "Felix",
    "Grace",
    "Hugo",
    "Ingrid",
    "Jamal",
    "Keira",
    "Leo",
    "Mina",
    "Nico",
    "Olivia",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Vera",
    "Wes",
    "Ximena",
    "Yusuf",
    "Zara",
    "Aisha",
    "Ben",
    "Carmen",
    "Dev",
    "Emil",
)
LAST_NAMES = (
    "Okafor",
    "Lindqvist",
    "Patel",
    "Moreno",
    "Nguyen",
    "Fischer",
    "Kowalski",
    "Haddad",
    "Tanaka",
    "Rossi",
    "Mendes",
    "O'Brien",
    "Adeyemi",
    "Larsen",
    "Costa",
    "Schmidt",
    "Ibrahim",
    "Dubois",
    "Silva",
    "Kim",
    "Novak",
    "Walsh",
    "Reyes",
    "Chen",
    "Müller",
    "Petrov",
    "Hughes",
    "Sato",
    "Núñez",
    "Andersen",
    "Clarke",
    "Evans",
    "Farah",
    "García",
)

# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class Product:
    id: str
    name: str
    description: str
    category: str
    price: str
    quantity: int
    tags: list[str]
    created_at: datetime
    popularity: float = 1.0  # internal only: drives the skewed demand, never written

    @property
    def price_value(self) -> float:
        return float(self.price)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "price": self.price,
            "quantity": self.quantity,
            "tags": self.tags,
            "created_at": iso(self.created_at),
        }


@dataclass
class User:
    id: str
    username: str
    email: str
    full_name: str
    persona: Persona
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "full_name": self.full_name,
            "persona": self.persona.key,
            "created_at": iso(self.created_at),
        }


@dataclass
class Event:
    at: datetime
    action: str
    product: Product | None = None
    query: str | None = None


@dataclass
class Interaction:
    id: str
    user_id: str
    product_id: str | None
    action: str
    query: str | None
    created_at: datetime
    order: tuple[int, int] = field(default=(0, 0))  # (user index, event index) tie-breaker

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "product_id": self.product_id,
            "action": self.action,
            "query": self.query,
            "created_at": iso(self.created_at),
        }


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_id(kind_: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind_}:{key}"))


def slugify(text: str, sep: str = "-") -> str:
    """ASCII slug: 'Sports & Outdoors' -> 'sports-outdoors', 'Núñez' -> 'nunez'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = ascii_text.replace("'", "")
    return re.sub(r"[^a-z0-9]+", sep, ascii_text.lower()).strip(sep)


def charm_price(raw: float, rng: Random) -> str:
    """Round a raw price to a shop-like ending such as 29.99 or 34.95."""
    whole = max(4, int(raw))
    cents = rng.choice((99, 99, 99, 99, 95, 49, 0))
    if cents == 0:
        whole += 1
    return f"{whole}.{cents:02d}"


def random_moment(rng: Random, start: datetime, end: datetime) -> datetime:
    span = max(0, int((end - start).total_seconds()))
    return start + timedelta(seconds=rng.randint(0, span))


def days_ago(rng: Random, low: float, high: float) -> datetime:
    moment = REFERENCE_TIME - timedelta(days=rng.uniform(low, high))
    return moment.replace(microsecond=0)


def join_phrases(phrases: Sequence[str]) -> str:
    """'a', 'b' -> 'a and b'; avoids 'x and y and z' when a phrase already has an 'and'."""
    if len(phrases) <= 1:
        return "".join(phrases)
    joiner = ", as well as " if any(" and " in p for p in phrases) else " and "
    return ", ".join(phrases[:-1]) + joiner + phrases[-1]


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


# --------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------


def build_users(rng: Random) -> list[User]:
    pairs = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(pairs)
    roster = [p for p in PERSONAS for _ in range(USERS_PER_PERSONA)]
    rng.shuffle(roster)
    roster.extend([NEWCOMER] * NEWCOMERS)
    users: list[User] = []
    usernames: set[str] = set()
    for (first, last), who in zip(pairs, roster, strict=False):
        username = unique_username(f"{slugify(first, '_')}_{slugify(last, '_')}", usernames)
        users.append(
            User(
                id=make_id("user", username),
                username=username,
                email=f"{username}@example.com",
                full_name=f"{first} {last}",
                persona=who,
                created_at=user_created_at(who, rng),
            )
        )
    return users


def unique_username(base: str, taken: set[str]) -> str:
    candidate, suffix = base, 2
    while candidate in taken:
        candidate, suffix = f"{base}{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def user_created_at(who: Persona, rng: Random) -> datetime:
    if who is NEWCOMER:
        return days_ago(rng, 0.2, 3)
    if rng.random() < 0.2:  # joined during the interaction window
        return days_ago(rng, 25, 100)
    return days_ago(rng, 130, 900)


# --------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------


class Shop:
    """Catalogue indexes and per-persona affinity weights used while simulating users."""

    def __init__(self, products: list[Product]) -> None:
        self.products = products
        self.price_rank = self._price_percentiles(products)
        self.weights: dict[str, list[float]] = {
            p.key: [self.persona_weight(p, product) for product in products] for p in PERSONAS
        }

    @staticmethod
    def _price_percentiles(products: list[Product]) -> dict[str, float]:
        by_category: dict[str, list[Product]] = defaultdict(list)
        for product in products:
            by_category[product.category].append(product)
        ranks: dict[str, float] = {}
        for members in by_category.values():
            members.sort(key=lambda p: (p.price_value, p.name))
            for index, product in enumerate(members):
                ranks[product.id] = index / max(1, len(members) - 1)
        return ranks

    def affinity(self, who: Persona, product: Product) -> float:
        tag_hits = len(who.tags.intersection(product.tags))
        return who.categories.get(product.category, 0.0) + 0.8 * tag_hits

    def price_fit(self, who: Persona, product: Product) -> float:
        pct = self.price_rank[product.id]
        if who.price_level == "budget":
            return 1.6 - 1.2 * pct
        if who.price_level == "premium":
            return 0.4 + 1.2 * pct
        return 1.3 - 1.2 * abs(pct - 0.5)

    def persona_weight(self, who: Persona, product: Product) -> float:
        affinity = self.affinity(who, product)
        if affinity <= 0:
            return 0.0
        return affinity * self.price_fit(who, product) * product.popularity

    def matching(self, needed: Sequence[str]) -> list[Product]:
        return [p for p in self.products if all(tag in p.tags for tag in needed)]


def available(product: Product, at: datetime) -> bool:
    return product.created_at + timedelta(hours=1) <= at


def weighted_pick(
    rng: Random, pool: Sequence[Product], weights: Sequence[float], at: datetime
) -> Product | None:
    options = [(p, w) for p, w in zip(pool, weights, strict=True) if w > 0 and available(p, at)]
    if not options:
        return None
    return rng.choices([p for p, _ in options], weights=[w for _, w in options])[0]


def pick_browse_product(shop: Shop, who: Persona, at: datetime, rng: Random) -> Product:
    """~80% on-persona (affinity x price fit x popularity), ~20% popularity-driven exploration."""
    if rng.random() >= EXPLORATION_SHARE:
        chosen = weighted_pick(rng, shop.products, shop.weights[who.key], at)
        if chosen is not None:
            return chosen
    chosen = weighted_pick(rng, shop.products, [p.popularity for p in shop.products], at)
    if chosen is None:
        raise RuntimeError(f"no product available at {iso(at)}")
    return chosen


PRICE_CAPS = (10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 250, 300, 400, 500)


def make_search(shop: Shop, who: Persona, rng: Random) -> tuple[str, list[Product]]:
    """Build a query from the persona's interests and the products that would answer it."""
    text, needed = rng.choice(who.searches)
    pool = shop.matching(needed)
    roll = rng.random()
    under_share = 0.35 if who.price_level == "budget" else 0.15
    if roll < under_share:
        prices = sorted(p.price_value for p in pool)
        cap = next(c for c in PRICE_CAPS if c >= prices[len(prices) // 3])
        return f"{text} under {cap}", [p for p in pool if p.price_value <= cap]
    if roll < under_share + 0.15:
        colours = sorted({t for p in pool for t in p.tags if t in COLOURS})
        if colours:
            colour = rng.choice(colours)
            return f"{colour} {text}", [p for p in pool if colour in p.tags]
    if roll < under_share + 0.27:
        prefix = {"budget": "cheap", "mid": "best", "premium": "premium"}[who.price_level]
        return f"{prefix} {text}", pool
    return text, pool


def step(moment: datetime, rng: Random, low: int = 8, high: int = 240) -> datetime:
    return moment + timedelta(seconds=rng.randint(low, high))


def product_funnel(
    product: Product, start: datetime, engaged: bool, rng: Random, end: datetime
) -> tuple[list[Event], datetime]:
    """view -> (click) -> (wishlist) -> (add_to_cart) -> (purchase), each step less likely.

    Returns the events and the moment the shopper moves on within the session.
    """
    events = [Event(start, "view", product)]
    moment = start
    if rng.random() >= (0.55 if engaged else 0.30):
        return events, moment
    moment = step(moment, rng)
    events.append(Event(moment, "click", product))
    if rng.random() < 0.15:
        moment = step(moment, rng)
        events.append(Event(moment, "wishlist", product))
    if product.quantity == 0 or rng.random() >= 0.38:
        return events, moment
    moment = step(moment, rng)
    events.append(Event(moment, "add_to_cart", product))
    if rng.random() < 0.55:
        if rng.random() < 0.7:  # checks out in the same session
            paid_at = step(moment, rng, 30, 900)
        else:  # comes back to the cart hours or days later
            paid_at = step(moment, rng, 2 * 3600, 4 * 86400)
        if paid_at <= end:
            events.append(Event(paid_at, "purchase", product))
    return events, moment


HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 5, 5, 5, 6, 8, 8, 6, 5, 5, 6, 8, 10, 11, 10, 7, 3)


def session_start(rng: Random, start: datetime, end: datetime) -> datetime:
    """A random day in the range, at an hour shaped like real shop traffic (evening peak)."""
    moment = random_moment(rng, start, end)
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    shaped = moment.replace(hour=hour, minute=rng.randint(0, 59), second=rng.randint(0, 59))
    return shaped if start <= shaped <= end else moment


def run_session(
    shop: Shop, who: Persona, start: datetime, seen: list[Product], rng: Random, end: datetime
) -> list[Event]:
    events: list[Event] = []
    moment = start
    pool: list[Product] = []
    if who.searches and rng.random() < SEARCH_SESSION_SHARE:
        query, pool = make_search(shop, who, rng)
        events.append(Event(moment, "search", None, query))
        moment = step(moment, rng, 3, 30)
    for _ in range(rng.randint(1, 5)):
        product, engaged = choose_session_product(shop, who, moment, pool, seen, rng)
        chain, moment = product_funnel(product, moment, engaged, rng, end)
        events.extend(chain)
        seen.append(product)
        moment = step(moment, rng, 20, 600)
        if moment > end:
            break
    return events


def choose_session_product(
    shop: Shop, who: Persona, at: datetime, pool: list[Product], seen: list[Product], rng: Random
) -> tuple[Product, bool]:
    """Search results first, then sometimes a revisit, otherwise normal browsing."""
    if pool and rng.random() < 0.8:
        hit = weighted_pick(rng, pool, [shop.price_fit(who, p) * p.popularity for p in pool], at)
        if hit is not None:
            return hit, True
    if seen and rng.random() < REVISIT_SHARE:
        return rng.choice(seen), True
    product = pick_browse_product(shop, who, at, rng)
    return product, shop.affinity(who, product) > 0


def user_events(shop: Shop, user: User, rng: Random) -> list[Event]:
    """Sessions spread over the window until the user's interaction budget is used up."""
    budget = rng.randint(*INTERACTIONS_PER_USER)
    start = max(WINDOW_START, user.created_at + timedelta(hours=1))
    last_start = REFERENCE_TIME - timedelta(hours=3)  # a session lasts well under 3 hours
    end = REFERENCE_TIME - timedelta(minutes=1)
    sessions = max(3, math.ceil(budget / 5))
    starts = sorted(session_start(rng, start, last_start) for _ in range(sessions))
    events: list[Event] = []
    seen: list[Product] = []
    while len(events) < budget:
        at = starts.pop(0) if starts else session_start(rng, start, last_start)
        events.extend(run_session(shop, user.persona, at, seen, rng, end))
    return events[:budget]  # generation order: a prefix never orphans a purchase


def build_interactions(shop: Shop, users: list[User], rng: Random) -> list[Interaction]:
    interactions: list[Interaction] = []
    for user_index, user in enumerate(users):
        if user.persona is NEWCOMER:
            continue  # cold-start demo users: no history at all
        for event_index, event in enumerate(user_events(shop, user, rng)):
            interactions.append(
                Interaction(
                    id=make_id("interaction", f"{user.username}:{event_index}"),
                    user_id=user.id,
                    product_id=event.product.id if event.product else None,
                    action=event.action,
                    query=event.query,
                    created_at=event.at,
                    order=(user_index, event_index),
                )
            )
    interactions.sort(key=lambda i: (i.created_at, i.order))
    return interactions


# --------------------------------------------------------------------------------------------
# Validation, output, summary
# --------------------------------------------------------------------------------------------


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"seed data check failed: {message}")


def validate_products(products: list[Product]) -> None:
    check(len(products) >= MIN_PRODUCTS, f"only {len(products)} products")
    check(len({p.category for p in products}) >= MIN_CATEGORIES, "too few categories")
    check(len({p.name for p in products}) == len(products), "duplicate product names")
    check(len({p.id for p in products}) == len(products), "duplicate product ids")
    for p in products:
        check(3 <= len(p.tags) <= 8, f"{p.name}: {len(p.tags)} tags")
        check(len(set(p.tags)) == len(p.tags), f"{p.name}: repeated tag")
        check(all(t == t.lower() for t in p.tags), f"{p.name}: tag not lowercase")
        check(p.tags[0] == slugify(p.category), f"{p.name}: first tag is not the category")
        check(re.fullmatch(r"\d+\.\d{2}", p.price) is not None, f"{p.name}: price {p.price}")
        check(p.quantity >= 0, f"{p.name}: negative stock")
    for spec in WORKED_EXAMPLES:
        match = [p for p in products if p.name == spec["name"]]
        check(len(match) == 1 and match[0].tags == spec["tags"], f"worked example {spec}")
    known_tags = {t for p in products for t in p.tags}
    for who in PERSONAS:
        check(who.tags <= known_tags, f"{who.key}: unknown tags {who.tags - known_tags}")
        for text, needed in who.searches:
            check(any(all(t in p.tags for t in needed) for p in products), f"query {text!r}")


def validate_users(users: list[User]) -> None:
    check(len(users) >= MIN_USERS, f"only {len(users)} users")
    for attr in ("id", "username", "email"):
        values = [getattr(u, attr) for u in users]
        check(len(set(values)) == len(values), f"duplicate user {attr}")
    for u in users:
        check(re.fullmatch(r"[a-z0-9_]+", u.username) is not None, f"username {u.username}")


def validate_interactions(
    interactions: list[Interaction], products: list[Product], users: list[User]
) -> None:
    check(len(interactions) >= MIN_INTERACTIONS, f"only {len(interactions)} interactions")
    by_id = {p.id: p for p in products}
    user_by_id = {u.id: u for u in users}
    stamps = [i.created_at for i in interactions]
    check(stamps == sorted(stamps), "interactions not sorted by time")
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for i in interactions:
        check(i.action in ACTIONS, f"unknown action {i.action}")
        check(WINDOW_START <= i.created_at < REFERENCE_TIME, f"{i.id} outside window")
        check(i.created_at > user_by_id[i.user_id].created_at, f"{i.id} before signup")
        if i.action == "search":
            check(i.product_id is None and bool(i.query), f"{i.id}: bad search")
            continue
        check(i.query is None and i.product_id in by_id, f"{i.id}: bad product event")
        product = by_id[str(i.product_id)]
        check(i.created_at > product.created_at, f"{i.id} before product existed")
        history = seen[(i.user_id, product.id)]
        if i.action == "purchase":
            check({"view", "add_to_cart"} <= history, f"{i.id}: purchase without view+cart")
        history.add(i.action)
    per_user = Counter(i.user_id for i in interactions)
    for u in users:
        count = per_user.get(u.id, 0)
        if u.persona is NEWCOMER:
            check(count == 0, f"newcomer {u.username} has interactions")
        else:
            low, high = INTERACTIONS_PER_USER
            check(low <= count <= high, f"{u.username} has {count} interactions")
    actions = Counter(i.action for i in interactions)
    check(
        actions["view"] > actions["click"] > actions["add_to_cart"] > actions["purchase"],
        f"funnel not decreasing: {dict(actions)}",
    )
    check(actions["wishlist"] < actions["click"], "more wishlists than clicks")


def write_json(name: str, records: list[dict[str, Any]]) -> None:
    with (OUT_DIR / name).open("w", encoding="utf-8", newline="\n") as handle:
        json.dump(records, handle, indent=1, ensure_ascii=False)
        handle.write("\n")


def summary(
    products: list[Product], users: list[User], interactions: list[Interaction]
) -> list[str]:
    categories = Counter(p.category for p in products)
    actions = Counter(i.action for i in interactions)
    demand = Counter(i.product_id for i in interactions if i.product_id)
    top_n = max(1, len(products) // 10)
    top_share = sum(c for _, c in demand.most_common(top_n)) / max(1, sum(demand.values()))
    newcomers = sum(1 for u in users if u.persona is NEWCOMER)
    return [
        f"products:     {len(products)} "
        f"({sum(1 for p in products if p.quantity == 0)} out of stock)",
        f"categories:   {len(categories)} "
        + ", ".join(f"{name} {count}" for name, count in sorted(categories.items())),
        f"users:        {len(users)} ({newcomers} newcomers with no interactions)",
        f"personas:     {len(PERSONAS)} + newcomer",
        f"interactions: {len(interactions)} " + ", ".join(f"{a} {actions[a]}" for a in ACTIONS),
        f"products with interactions: {len(demand)}; "
        f"top 10% of products get {top_share:.0%} of product events",
        f"window:       {iso(WINDOW_START)} .. {iso(REFERENCE_TIME)}",
    ]


def main() -> None:
    rng = Random(SEED)
    products = build_products(rng)
    users = build_users(rng)
    interactions = build_interactions(Shop(products), users, rng)
    validate_products(products)
    validate_users(users)
    validate_interactions(interactions, products, users)
    write_json("products.json", [p.to_json() for p in products])
    write_json("users.json", [u.to_json() for u in users])
    write_json("interactions.json", [i.to_json() for i in interactions])
    for line in summary(products, users, interactions):
        print(line)  # noqa: T201


if __name__ == "__main__":
    main()
