"""What identifies a listing, read the way shops write it: brand names, model numbers, measurements and
bundles.

Shops spell the same thing differently: "LG-Electronics" and "LG", "BOSCH Power Tools" and "Bosch";
a model number with a colour or region suffix ("KX100B", "KX100W"); a speed or a capacity that looks
like a part number ("300Mbps", "128-bit", "5400"). These rules turn each into a comparable form, so
the scorer (``product_matching``) compares like with like. Pure functions, no state.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable

WORD = re.compile(r"[^\W_]+(?:[-/.][^\W_]+)*", re.UNICODE)

# Units a number can carry: a token "300Mbps" or "5.0Ah" is a measurement, never a model number.
UNITS = (
    "in|inch|inches|ft|feet|yd|mm|cm|m|km|oz|qt|gal|l|ml|lb|lbs|kg|g|mg|v|w|kw|amp|amps|ah|mah|wh|kwh|cfm|psi|rpm|"
    "pc|pcs|piece|pieces|pack|pk|cup|cups|cc|tb|gb|mb|kb|bit|bits|bps|kbps|mbps|gbps|hz|khz|mhz|ghz|mp|db|lm|nm|"
    "k|p|ks|x"
)
SPEC = re.compile(rf"(\d+(?:[.,]\d+)?(?:[-/ ]\d+/\d+)?)\s*-?\s*({UNITS})\b\.?", re.IGNORECASE)
SPEC_TOKEN = re.compile(rf"^\d+(?:[.,]\d+)?-?({UNITS})$", re.IGNORECASE)
UNIT_ALIASES = {"inch": "in", "inches": "in", "feet": "ft", "lbs": "lb", "pcs": "pc", "piece": "pc", "pieces": "pc",
                "ks": "pc", "amps": "amp", "bits": "bit", "cups": "cup", "pk": "pack"}  # fmt: skip
NUMBER_ONLY = re.compile(r"^\d+(?:[.,/]\d+)*$")  # 1/2, 10.25, 2024: a quantity, not a part number
DIMENSIONS = re.compile(r"^\d+(?:[.,]\d+)?(?:x\d+(?:[.,]\d+)?)+$", re.IGNORECASE)  # 14x15, 1920x1080
N_IN_ONE = re.compile(r"^\d+-in-\d+$", re.IGNORECASE)  # 11-in-1
MIN_ARTICLE_DIGITS = 5  # a bare number this long is an article number (05347099001); shorter is a quantity (5400)
VARIANT_SUFFIX = 3  # a model sharing all but this many trailing characters is a variant (KX100B / KX100W)
SHORT_NUMBER = re.compile(r"^\d{3,4}$")  # "5510", "3477": a model line's number, or a speed ("5400")

# Words a company or product line adds to its name, dropped from the end of a brand ("Bosch Power Tools").
BRAND_SUFFIXES = frozenset(
    """inc incorporated corp corporation co company ltd limited llc llp gmbh ag sa spa srl bv nv plc pty kg
    sro as software electronics electronic tools tool power technologies technology tech international intl
    group industries industrial brands brand products manufacturing mfg systems solutions usa us america
    europe eu home appliances audio entertainment interactive games studios media computer computers
    networks networking digital labs mobile consumer enterprises holdings worldwide global""".split()  # noqa: SIM905 (a word list reads better as text)
)

# A listing sold as several units or with extras: its price is not comparable to a single unit's.
BUNDLE_COUNT = re.compile(
    r"(?:\b(\d+)\s*-?\s*(?:pack|pk|pcs|pc|pieces|piece|count|ct|ks|kusů|kusy)\b"
    r"|\b(?:pack|set|box|case|bundle) of (\d+)\b|(?<![x×]\s)\b(\d+)\s*x\b(?!\s*\d))",  # not "196 x 50 x 50 cm"
    re.IGNORECASE,
)
BUNDLE_WORDS = {"twin pack": "2", "double pack": "2", "triple pack": "3", "dvojbalení": "2"}
BUNDLE_MARKERS = re.compile(r"\b(kit|bundle|combo|set of|sada|balení)\b", re.IGNORECASE)


def words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


def _plain(text: str) -> str:
    """Lower case without accents: "Kärcher" -> "karcher"."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if not unicodedata.combining(c)).lower()


# -- brands ------------------------------------------------------------------------------------------


def brand_tokens(name: str) -> tuple[str, ...]:
    """A brand's words with case, accents, punctuation and spacing normalised and corporate / product-line
    suffixes dropped from the end: "LG-Electronics" -> ("lg",), "BOSCH Power Tools" -> ("bosch",),
    "The Hewlett-Packard Company" -> ("hewlett", "packard"). Empty for an empty name."""
    tokens = re.sub(r"[^0-9a-z]+", " ", _plain(name).replace("&", " and ")).split()
    if len(tokens) > 1 and tokens[0] == "the":
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in BRAND_SUFFIXES:
        tokens.pop()
    return tuple(tokens)


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    return n > 0 and any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


def brands_agree(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Normalised brands agree when equal, equal without spaces ("De Walt" / "DeWalt"), or one's words
    appear in order within the other's ("Sony" / "Sony Pictures")."""
    if not a or not b:
        return False
    if "".join(a) == "".join(b):
        return True
    return _contains(a, b) if len(a) >= len(b) else _contains(b, a)


def brand_in_title(brand: tuple[str, ...], title: str) -> bool:
    """Whether a brand's words appear in order in a title (the other shop left its brand field empty)."""
    return bool(brand) and _contains(brand_tokens_of_text(title), brand)


def brand_tokens_of_text(text: str) -> tuple[str, ...]:
    return tuple(re.sub(r"[^0-9a-z]+", " ", _plain(text)).split())


# -- model numbers -----------------------------------------------------------------------------------


def model_numbers(text: str) -> set[str]:
    """Tokens that look like model or part numbers, normalised (case, dashes, slashes and dots dropped,
    so "48-22-2761" equals "48222761").

    Kept: letters with at least two digits, five characters or more ("DCS570P1", "GLL30", "E3-16C");
    digit groups joined by dashes ("2853-20", "33-425"); bare numbers of five digits or more (article
    numbers such as "05347099001"). Skipped: measurements ("300Mbps", "128-bit", "5.0Ah", "4-Pack"),
    plain numbers ("5400", "2024"), fractions and decimals ("1/2", "10.25"), dimensions ("14x15") and
    "11-in-1"."""
    found = set()
    for token in WORD.findall(text):
        if SPEC_TOKEN.match(token) or DIMENSIONS.match(token) or N_IN_ONE.match(token):
            continue
        plain = re.sub(r"[-/.]", "", token).upper()
        if plain.isdigit():
            joined = "-" in token and "/" not in token and "." not in token
            if NUMBER_ONLY.match(token) and not joined and len(plain) < MIN_ARTICLE_DIGITS:
                continue
            if NUMBER_ONLY.match(token) and ("/" in token or "." in token or "," in token):
                continue
            if len(plain) >= MIN_ARTICLE_DIGITS or (joined and len(plain) >= 4):
                found.add(plain)
        elif sum(c.isdigit() for c in plain) >= 2 and len(plain) >= 5:
            found.add(plain)
    return found


def short_numbers(text: str) -> set[str]:
    """Bare numbers of three or four digits that carry no unit ("Vostro 5510", "WK 3477"; not "5400 rpm"):
    too weak to rule a match out on their own, but evidence when shared."""
    measured = [m.span() for m in SPEC.finditer(text)]
    return {
        m.group()
        for m in WORD.finditer(text)
        if SHORT_NUMBER.match(m.group()) and not any(start <= m.start() < end for start, end in measured)
    }


def joined_tokens(text: str, span: int = 3) -> set[str]:
    """Every run of up to ``span`` consecutive tokens glued and upper-cased, so a model number written with
    spaces ("SRT 32HC2003", "RIG 400HX") is found; never part of a token ("BL5000" is not in "GBL5000")."""
    tokens = re.sub(r"[^0-9A-Z]+", " ", _plain(text).upper()).split()
    return {"".join(tokens[i : i + n]) for n in range(1, span + 1) for i in range(len(tokens) - n + 1)}


def is_variant(a: str, b: str) -> bool:
    """Two different model numbers with a shared stem and short differing suffixes ("KX100B" / "KX100W",
    "40520" / "40521", "DCS570B" / "DCS570P1"; the stem holds at least four characters and two digits), or
    of the same length, six or more, differing in one character ("GSJ960PZBZ" / "GSL960PZBZ")."""
    if a == b:
        return False
    if len(a) == len(b) >= 6 and sum(x != y for x, y in zip(a, b)) == 1:
        return True
    stem = 0
    for x, y in zip(a, b):
        if x != y:
            break
        stem += 1
    return (
        stem >= 4
        and sum(c.isdigit() for c in a[:stem]) >= 2
        and len(a) - stem <= VARIANT_SUFFIX
        and len(b) - stem <= VARIANT_SUFFIX
    )


def model_relation(
    a: Iterable[str], b: Iterable[str], title_a: str | set[str] = "", title_b: str | set[str] = ""
) -> str:
    """ "shared" (a model number in common, or one found in the other title written with spaces; a
    title may be given as its ``joined_tokens``),
    "variant" (only variants of each other), "conflict" (both have model numbers, unrelated) or ""
    (one side has none)."""
    a, b = set(a), set(b)
    if a & b:
        return "shared"
    for models, title in ((a, title_b), (b, title_a)):
        if models and title and models & (title if isinstance(title, set) else joined_tokens(title)):
            return "shared"
    if not a or not b:
        return ""
    if any(is_variant(x, y) for x in a for y in b):
        return "variant"
    return "conflict"


# -- measurements, bundles, price --------------------------------------------------------------------


def _number(value: str) -> str:
    """ "7.0" -> "7", "2,5" -> "2.5"; fractions ("7-1/4") as written."""
    value = value.replace(",", ".").replace(" ", "-")
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:g}"


def specs(text: str) -> dict[str, set[str]]:
    """Measurements by unit: "10 in. x 60 yd." -> {"in": {"10"}, "yd": {"60"}}; "7.0 Amp" = "7 Amp"."""
    found: dict[str, set[str]] = {}
    for value, unit in SPEC.findall(text):
        unit = UNIT_ALIASES.get(unit.lower(), unit.lower())
        found.setdefault(unit, set()).add(_number(value))
    return found


def bundle(text: str) -> frozenset[str]:
    """What makes a listing more than one unit: counts ("2-Pack", "set of 3", "Twin Pack" -> "2") and
    markers ("kit", "bundle", "combo"). Empty for a single unit; a count of 1 is a single unit."""
    plain = _plain(text)
    found = {n for groups in BUNDLE_COUNT.findall(plain) for n in groups if n and n.lstrip("0") not in ("", "1")}
    found |= {n for phrase, n in BUNDLE_WORDS.items() if phrase in plain}
    found |= {m.lower().replace("set of", "set") for m in BUNDLE_MARKERS.findall(plain)}
    return frozenset(found)


def price_agreement(ratio: float) -> float:
    """From -1 to 1, smooth in the ratio of the lower price to the higher: 1 at equal prices, 0 at half,
    -1 at a quarter or less (log2 of the ratio, plus one). No cliff, so a marketplace's price off by a
    third costs a little, not everything."""
    if ratio <= 0:
        return -1.0
    return max(-1.0, min(1.0, 1.0 + math.log2(ratio)))
