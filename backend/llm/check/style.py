"""The reviewed vocabulary: words a reason may use without a fact behind them.

Only connective and stylistic words live here: grammar, addressing the shopper, and warm
words that state nothing checkable ("great", "fits", "pick"). Reviewed rule: a word that
could carry a claim of its own stays OUT, so a fact must license it. Left out on purpose:
price and value ("deal", "worth", "affordable"), shipping ("ships", "arrives"), stock
("available", "left"), popularity and social proof ("popular", "favourite", "everyone",
"customers"), past actions and times ("bought", "viewed", "recently", "today"), materials and
origin ("made", "genuine"), compatibility ("compatible", "works"), negation ("not", "no",
"never", "without", "isn't"), inclusion ("comes", "includes", "everything"), novelty and
awards ("new", "latest", "award", "exclusive"), comparisons ("than", "more", "better",
"best", "other"). Matched on the word's stem (``backend.text.stem``).
"""

from __future__ import annotations

from backend.text import stem

_FUNCTION = """
a an the and or but so yet for to of in on at by with from into onto about as if then
is are was were be been being am it its it's this that these those here there what which
who whose when where while because since also too very really quite just only even all any
some each every both such one ones you your yours you're you've you'll you'd yourself we
our us we've we're we'd i i'm i'd i've me my they them their he she his her do does did
can could would should will may might must shall has have had having get gets got getting
let let's lets go goes going take takes keep keeps bring brings give gives here's that's
there's what's how why way ways thing things something anything kind sort bit little lot
lots much many well still whether either within request product products item items
"""

# Warm, stylistic words that claim nothing a fact could contradict.
_STYLE = """
hi hello hey welcome dear thanks great good nice lovely perfect ideal solid smart handy neat
fine wonderful excellent fantastic brilliant superb terrific natural fitting sensible
suitable fit fits suit suits match matches matching complement complements pair pairs go-to
pick picks choice choices option options suggestion suggestions idea ideas addition
additions add-on next recommend recommendation recommendations suggest think thought
figure reckon like likes love loves enjoy enjoys want wants need needs appreciate
treat right exactly especially particularly interest interests interested into taste tastes
style enjoyment shopping shop store collection range lineup list selection set here's
worthwhile consider considering
round rounds complete completes extend extends build builds along alongside together
help helps helping make makes making keep use everyday day-to-day routine
selected found gathered rounded lined someone companion inspired character design follow
street tick ticks box boxes play plays fact among
"""

# Words only the intro may use to present the list ("take a look", "chosen for you"): in a
# reason they could claim what the shopper did.
_INTRO = """
picks pick here are few some selection selected for you welcome back hope enjoy take look
chosen up lined
"""

# Phrases whose words are fine together though one alone could be a claim: "your favourite"
# is about the shopper, "a favourite" alone would be social proof.
_PHRASES = """
your favourite|your favorite|your next favourite|your next favorite|your new favourite
|your new favorite|your go-to|right up your street|up your alley
"""
STYLE_PHRASES = frozenset(
    tuple(stem(w) for w in p.split()) for p in _PHRASES.replace("\n", "").split("|")
)

# Reviewed openings of a reason and closing lines of an intro for the "facts" answer grammar
# (backend/llm/answer_grammar.py), where a small model chooses among them instead of writing
# its own: every word is a style word, so each passes the check before any fact is said.
LEADS = (
    "A great pick", "A good fit", "A solid choice", "A nice addition", "A smart pick",
    "A natural fit", "A great match", "An excellent choice", "A handy pick", "Perfect for you",
    "Ideal for you", "Great for you", "Right up your street", "Here's why",
)  # fmt: skip
INTRO_LINES = (
    "Here are some picks for you.", "Here are {count} picks for you.",
    "Here are a few ideas for you.", "Take a look at these picks.",
    "Hope you enjoy these picks.", "Some picks chosen for you.",
)  # fmt: skip

STYLE_STEMS = frozenset(stem(w) for w in (_FUNCTION + _STYLE).split())
INTRO_STEMS = STYLE_STEMS | frozenset(stem(w) for w in _INTRO.split())
