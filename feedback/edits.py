"""Classify a user's edit of a model output by the content of the change, not only its size.

Pure Python, no Django. `classify_edit(output, final_text)` tokenises both texts into
words, numbers and punctuation runs (whitespace is never a token), finds the changed
spans with rapidfuzz's Levenshtein opcodes over those tokens, and names what each span
changed: a number, date, amount, name, negation or code token is substantive even when
it is one token; whitespace, punctuation, casing and markdown are cosmetic; a cut at
either end is a trim; a block of the user's own notes added at either end is a note. The
kind of output (code, structured data, prose) decides whether punctuation is syntax.
The Indel ratio is one feature: above `ratio_max` the edit is a rewrite, and a large ratio
lowers a correction's confidence. docs/labels.md documents the rules.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from rapidfuzz.distance import Indel, Levenshtein

EditKind = Literal["none", "correction", "cosmetic", "trim", "note", "rewrite"]
Content = Literal["code", "structured", "prose"]

# Confidence that the classification is right (for a correction: that the final text is
# the better answer). docs/labels.md explains them; change both together.
SUBSTANTIVE: Final[dict[str, float]] = {
    "code_token": 0.92,
    "number": 0.92,
    "amount": 0.92,
    "date": 0.92,
    "negation": 0.90,
    "name": 0.90,
}
CODE_LINES: Final = 0.72  # code lines rewritten: usually a fix, sometimes a refactor
WORDING: Final = 0.55  # prose words or sentences changed with no substantive token: review
RENAME: Final = 0.50  # an identifier renamed at every use: taste as often as a fix
KEY: Final = 0.50  # a key of structured data renamed: a schema preference as often as a fix
MIXED: Final = 0.60  # a fact fixed inside wider rewording or cuts: which one the user meant?
ADDED_CONTENT: Final = 0.55  # text added at an end, not recognisably a note: as often one
REWRITE: Final = 0.40
COSMETIC: Final = 0.90
TRIM: Final = 0.80
NOTE: Final = 0.80
LARGE_RATIO_PENALTY: Final = 0.25  # a correction loses up to this much as ratio nears max
TARGETED_SPAN: Final = 4  # tokens on either side of a change that can still be a fix of one fact
KEPT_MIN: Final = 0.35  # below this share of the output's tokens kept, an edit is a rewrite

# Numbers keep their separators ("4.2", "2024-01-01", "10:00"); identifiers split at dots.
_TOKEN: Final = re.compile(r"\d+(?:[.,:/-]\d+)*[^\W\d_]*|\w+(?:['’-]\w+)*|[^\w\s]+")
_MARKDOWN: Final = frozenset("*_#`>~|-=+:")
_CURRENCY: Final = frozenset("$€£¥₹₽₩¢")
_SENTENCE_END: Final = frozenset(".!?…。！？")
_COMMENT: Final = ("#", "//", "--", "/*", "<!--", ";")
_FENCE: Final = re.compile(r"^\s*(```|~~~)")
_CODE_LINE: Final = re.compile(
    r"""^\s*(def|class|return|import|const|let|var|function|fn|func|package|\#include|SELECT|
    FROM|WHERE|JOIN|GROUP\s+BY|ORDER\s+BY|INSERT|UPDATE|DELETE|CREATE|ALTER|AND|OR|HAVING|
    LIMIT|>>>|\$)\s
    |^\s*(if|elif|else|for|while|with|try|except|finally)\b.*:\s*$|^\s*from\s+\S+\s+import\s
    |[;{}]\s*$|\)\s*:\s*$|==|!=|<=|>=|=>|->|:=|\+=|-=|&&|\|\|
    |^\s*[\w.\[\]"']+\s*=\s*\S|\w\(.*\)|^\s*"[^"]*"\s*:""",
    re.VERBOSE,
)
# The key of a "key": value (JSON) or key: value (YAML) line.
_KEY_LINE: Final = re.compile(r"""^\s*(?:-\s+)?["']?([\w.-]+)["']?\s*:(?!:)""")
_PROSE_WORD: Final = re.compile(r"[^\W\d_]{2,}")
# Changes that, beside a substantive token, make an edit more than a targeted fix.
_UNTARGETED: Final = frozenset(
    ("words", "sentence", "code_lines", "added", "rename", "key", "trim", "note")
)
_NEGATION_WORDS: Final = """not no never none nobody nothing neither nor cannot can't won't
    don't doesn't didn't
    isn't aren't wasn't weren't shouldn't wouldn't couldn't mustn't hasn't haven't hadn't
    nicht kein keine keinen keiner nie niemals ne pas jamais aucun aucune non ni nunca
    nada ningún ninguna tampoco não nem nenhum nunca mai nessuno niente не нет ни никогда
    niet geen nooit nej inte aldrig ej"""
_NEGATIONS: Final = frozenset(_NEGATION_WORDS.split())
_DATE_WORDS: Final = """january february march april may june july august september october november
    december jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday
    thursday friday saturday sunday mon tue tues wed thu thurs fri sat sun januar februar
    märz juni juli oktober dezember montag dienstag mittwoch donnerstag freitag samstag
    sonntag janvier février mars avril mai juin juillet août septembre octobre novembre
    décembre lundi mardi mercredi jeudi vendredi samedi dimanche enero febrero marzo abril
    mayo junio julio agosto septiembre octubre noviembre diciembre lunes martes miércoles
    jueves viernes sábado domingo today tomorrow yesterday"""
_MONTHS_AND_DAYS: Final = frozenset(_DATE_WORDS.split())
_NUMBER_WORDS: Final = """zero one two three four five six seven eight nine ten eleven twelve
    twenty thirty forty fifty hundred thousand million billion half double twice once
    first second third fourth fifth sixth seventh eighth ninth tenth last
    percent null eins zwei drei vier fünf sechs sieben acht neun zehn hundert tausend
    millionen milliarden un une deux trois quatre cinq six sept huit neuf dix cent mille
    millions uno dos tres cuatro cinco seis siete ocho nueve diez cien mil millones"""
_NUMBERS: Final = frozenset(_NUMBER_WORDS.split())
_TITLES: Final = frozenset(
    ("mr", "mrs", "ms", "dr", "prof", "st", "hr", "fr", "sr", "jr", "herr", "frau")
)
_NOTE_MARKERS: Final = re.compile(
    r"""^\W*(todo|fixme|xxx|nb|n\.b\.|note|notes|ps|p\.s\.|remember|reminder|ticket|draft|
    see\ also|cc|fyi|for\ the|for\ my|ask|check|double-check|thanks|thank\ you|thx|ty|
    danke|merci|gracias|grazie|obrigad[oa]|спасибо|todo:|notiz|remarque|nota)\b
    |^\s*[(\[].*[)\]]\s*$|\?\s*$|^\s*@\w""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class EditClass:
    kind: EditKind
    confidence: float  # that `kind` is right, in [0, 1], 4 places
    ratio: float  # Indel normalised distance output -> final, 4 places
    content: Content
    changes: tuple[str, ...]  # what changed, sorted: "number", "casing", "trim", ...


@dataclass(frozen=True, slots=True)
class _Tokens:
    words: list[str]
    code: list[bool]  # the token sits on a code line (fenced block or code-like line)
    line: list[int]  # line number of each token
    line_start: list[bool]  # first token of its line
    lines: list[str]
    key: list[bool]  # the token is the key of a `"key": value` line (structured data)


def _is_fence(line: str) -> bool:
    return line.lstrip().startswith(("```", "~~~"))


def _has_fence(text: str) -> bool:
    """Whether any line of `text` may be a fence (no line is without this)."""
    return "```" in text or "~~~" in text


@lru_cache(maxsize=8192)
def _line(line: str) -> tuple[tuple[str, ...], bool, int]:
    """A line's tokens, whether it reads as code outside a fence, and the position among
    its tokens of its `"key":` (-1 if none). Depends on the line alone: cached, as the
    lines of an output and its edit repeat (and re-derivations repeat them all)."""
    found = tuple(_TOKEN.findall(line))
    code_like = _CODE_LINE.search(line) is not None and not _is_prose(line)
    match = _KEY_LINE.match(line)
    at = found.index(match.group(1)) if match and match.group(1) in found else -1
    return found, code_like, at


def _tokenise(lines: list[str], lo: int, hi: int, *, fences: bool = True) -> _Tokens:
    """Tokens of lines[lo:hi]; only the changed region is tokenised, to keep this fast.
    `fences`: whether the text may hold a fence (`_has_fence`); False skips looking."""
    words: list[str] = []
    code: list[bool] = []
    line_of: list[int] = []
    first: list[bool] = []
    key: list[bool] = []
    fenced = fences and sum(1 for line in lines[:lo] if _is_fence(line)) % 2 == 1
    for n in range(lo, hi):
        line = lines[n]
        found, code_like, at = _line(line)
        if fences and _is_fence(line):
            on_code, fenced = True, not fenced
        else:
            on_code = fenced or code_like
        if found:
            count = len(found)
            words += found
            code += [on_code] * count
            line_of += [n] * count
            first += [True] + [False] * (count - 1)
            if on_code and at >= 0:
                key += [k == at for k in range(count)]
            else:
                key += [False] * count
    return _Tokens(words, code, line_of, first, lines, key)


def _is_prose(line: str) -> bool:
    """A sentence that only looks like code: "It runs in O(n) time, so ..." has a call-like
    `O(n)` but is prose (eight or more words, mostly words, ending like a sentence). A
    `"key": value` line is data, whatever its value says."""
    stripped = line.strip()
    if _KEY_LINE.match(stripped) or stripped.endswith((";", "{", "}", ":")):
        return False
    words = _PROSE_WORD.findall(stripped)
    tokens = _TOKEN.findall(stripped)
    return (
        len(words) >= 8
        and len(words) >= 0.6 * len(tokens)
        and (stripped[-1:] in _SENTENCE_END or ". " in stripped)
    )


def _content(text: str, lines: list[str], region: _Tokens) -> Content:
    stripped = text.strip()
    if stripped[:1] in "{[" and stripped[-1:] in "}]":
        return "structured"
    if _has_fence(text) and any(_is_fence(line) for line in lines):
        return "code"
    if "|" in text and sum(1 for line in lines if line.lstrip().startswith("|")) >= 2:
        return "structured"
    code = sum(1 for c in region.code if c)
    return "code" if code and code * 2 >= len(region.code) else "prose"


_WORD_CHAR: Final = re.compile(r"\w")  # str.isalnum() or "_", as the docs of `re` define \w


def _is_punct(token: str) -> bool:
    """No letter, digit or underscore in it."""
    return _WORD_CHAR.search(token) is None


def _is_name(tokens: _Tokens, i: int) -> bool:
    """A capitalised word that does not start a sentence or line: a proper noun."""
    word = tokens.words[i]
    if not word[:1].isupper() or tokens.line_start[i] or i == 0:
        return False
    previous = tokens.words[i - 1]
    if previous == "." and i >= 2 and tokens.words[i - 2].casefold() in _TITLES:
        return True
    return not (_is_punct(previous) and previous[-1] in _SENTENCE_END | {":", "-", "*", "#"})


def _span_features(a: _Tokens, i1: int, i2: int, b: _Tokens, j1: int, j2: int) -> set[str]:
    removed, inserted = a.words[i1:i2], b.words[j1:j2]
    changed = removed + inserted
    on_code = any(a.code[i1:i2]) or any(b.code[j1:j2])
    keys = a.key[i1:i2] + b.key[j1:j2]
    if on_code and any(keys) and all(k or _is_punct(t) for k, t in zip(keys, changed, strict=True)):
        return {"key"}  # "customer_name" -> "name": the data's shape, not its facts
    if len(removed) == len(inserted) and [t.casefold() for t in removed] == [
        t.casefold() for t in inserted
    ]:
        return {"code_token"} if on_code else {"casing"}
    if all(map(_is_punct, changed)):  # stops at the first word: most spans hold one early
        joined = "".join(changed)
        if not _CURRENCY.isdisjoint(joined):
            return {"amount"}
        if on_code:
            return {"code_token"}
        if _MARKDOWN.issuperset(joined):
            return {"formatting"}
        return {"punctuation"}
    if max(len(removed), len(inserted)) > TARGETED_SPAN:
        # Lines or sentences replaced: a new fact in new wording is not a targeted fix.
        if on_code:
            return {"code_lines"}
        sentence = any(t[-1] in _SENTENCE_END and _is_punct(t) for t in changed)
        return {"sentence" if sentence else "words"}
    features: set[str] = set()
    for t in changed:
        low = t.casefold()
        if low in _NUMBERS or any(ch.isdigit() for ch in t):
            features.add("number")
        if low in _MONTHS_AND_DAYS:
            features.add("date")
        if any(ch in _CURRENCY for ch in t):
            features.add("amount")
    if _negations(removed) != _negations(inserted):
        features.add("negation")  # "doesn't" -> "does not" keeps the meaning: no negation
    if any(_is_name(a, i) for i in range(i1, i2)) or any(_is_name(b, j) for j in range(j1, j2)):
        features.add("name")
    if on_code:
        features.add("code_token")
    if not inserted and not on_code:
        # Words deleted from prose: only a dropped negation flips a fact; a name or number
        # that goes with its sentence is a cut, not a fix.
        features &= {"negation"}
    if not features:
        features.add("words")
    return features


def _negations(tokens: list[str]) -> int:
    return sum(1 for t in tokens if t.casefold() in _NEGATIONS or t.casefold().endswith("n't"))


def _is_note(block: list[str], lines: list[str], code: list[bool]) -> bool:
    """Text added at an end (or a line inside code) that reads as the user's own note."""
    text = " ".join(block)
    if any(code):
        return any(" ".join(block).startswith(marker) for marker in _COMMENT)
    return any(_NOTE_MARKERS.search(line) for line in lines if line.strip()) or (
        len(block) <= 3 and not any(t[-1] in _SENTENCE_END for t in block) and len(text) < 25
    )


def _cut_at_end(a: _Tokens, i2: int, text_after: bool) -> bool:
    """A deletion that ends the text, but for closing punctuation the user kept."""
    return not text_after and all(_is_punct(t) for t in a.words[i2:])


def _renames(a: _Tokens, b: _Tokens, spans: list[tuple[int, int, int, int]]) -> set[int]:
    """Spans that rename one code identifier at every use: refactoring, not a fix."""
    pairs: dict[tuple[str, str], list[int]] = {}
    for n, (i1, i2, j1, j2) in enumerate(spans):
        if i2 - i1 == 1 and j2 - j1 == 1 and a.code[i1] and b.code[j1]:
            old, new = a.words[i1], b.words[j1]
            if old.isidentifier() and new.isidentifier():
                pairs.setdefault((old, new), []).append(n)
    final = set(b.words)
    return {
        n
        for (old, _), found in pairs.items()
        if len(found) >= 2 and old not in final
        for n in found
    }


def classify_edit(
    output: str, final_text: str, *, ratio_min: float = 0.05, ratio_max: float = 0.90
) -> EditClass:
    """What kind of change turns `output` into `final_text`, and how sure that is.

    `ratio_max`: above it the edit is a rewrite. `ratio_min`: below it a change of prose
    wording with no substantive token is cosmetic. Identical texts, or texts that differ
    only by whitespace around them, are kind "none".
    """
    if final_text == output or final_text.strip() == output.strip():
        return EditClass("none", 1.0, 0.0, "prose", ())
    ratio = round(Indel.normalized_distance(output, final_text), 4)
    lines_a, lines_b = output.split("\n"), final_text.split("\n")
    # Lines both texts share at the start and at the end are not tokenised.
    shorter = min(len(lines_a), len(lines_b))
    lo = 0
    while lo < shorter and lines_a[lo] == lines_b[lo]:
        lo += 1
    tail = 0
    while tail < shorter - lo and lines_a[-1 - tail] == lines_b[-1 - tail]:
        tail += 1
    a = _tokenise(lines_a, lo, len(lines_a) - tail, fences=_has_fence(output))
    b = _tokenise(lines_b, lo, len(lines_b) - tail, fences=_has_fence(final_text))
    content = _content(output, lines_a, a)
    if a.words == b.words:
        return EditClass("cosmetic", COSMETIC, ratio, content, ("whitespace",))
    if (
        len(a.words) == len(b.words)
        and not any(a.code)
        and [t.casefold() for t in a.words] == [t.casefold() for t in b.words]
    ):
        return EditClass("cosmetic", COSMETIC, ratio, content, ("casing",))
    if ratio > ratio_max or not final_text.strip():
        return EditClass("rewrite", REWRITE, ratio, content, ("rewrite",))
    text_before = any(line.strip() for line in lines_a[:lo])
    text_after = any(line.strip() for line in lines_a[len(lines_a) - tail :])

    features: set[str] = set()
    spans = [
        (op.src_start, op.src_end, op.dest_start, op.dest_end)
        for op in Levenshtein.opcodes(a.words, b.words)
        if op.tag != "equal"
    ]
    spans = _merge_touching(spans)
    renamed = _renames(a, b, spans)
    for n, (i1, i2, j1, j2) in enumerate(spans):
        at_start = i1 == 0 and j1 == 0 and not text_before
        at_end = i2 == len(a.words) and j2 == len(b.words) and not text_after
        if n in renamed:
            features.add("rename")
        elif j1 == j2 and i2 - i1 >= 3 and (at_start or _cut_at_end(a, i2, text_after)):
            features.add("trim")
        elif i1 == i2 and (at_end or at_start):
            block_lines = b.lines[b.line[j1] : b.line[j2 - 1] + 1]
            whole_lines = b.line_start[j1] and (j2 == len(b.words) or b.line_start[j2])
            if whole_lines and _is_note(b.words[j1:j2], block_lines, b.code[j1:j2]):
                features.add("note")
            else:
                features.add("added")  # more answer, or a note we cannot tell: review
        elif i1 == i2 and b.line_start[j1] and (j2 == len(b.words) or b.line_start[j2]):
            block_lines = b.lines[b.line[j1] : b.line[j2 - 1] + 1]
            if any(b.code[j1:j2]) and _is_note(b.words[j1:j2], block_lines, b.code[j1:j2]):
                features.add("note")  # a comment line typed into code changes no behaviour
            else:
                features |= _span_features(a, i1, i2, b, j1, j2)
        else:
            features |= _span_features(a, i1, i2, b, j1, j2)
    changes = tuple(sorted(features))

    if ratio > KEPT_MIN and _is_replaced(a, b, spans, (lines_a, lines_b), lo, tail):
        return EditClass("rewrite", REWRITE, ratio, content, changes)
    strongest = max((SUBSTANTIVE[f] for f in features if f in SUBSTANTIVE), default=None)
    if strongest is not None:
        if features & _UNTARGETED:
            # A fact fixed among reworded sentences, cut lines or renames: the fix and a
            # restyle look the same from here. People decide.
            strongest = min(strongest, MIXED)
        return EditClass("correction", _large(strongest, ratio, ratio_max), ratio, content, changes)
    if "code_lines" in features:
        return EditClass(
            "correction", _large(CODE_LINES, ratio, ratio_max), ratio, content, changes
        )
    if features & {"words", "sentence"}:
        if ratio < ratio_min and "sentence" not in features:
            return EditClass("cosmetic", 0.6, ratio, content, changes)
        return EditClass("correction", _large(WORDING, ratio, ratio_max), ratio, content, changes)
    if "added" in features:
        return EditClass("correction", ADDED_CONTENT, ratio, content, changes)
    if "rename" in features:
        return EditClass("correction", RENAME, ratio, content, changes)
    if "key" in features:
        return EditClass("correction", KEY, ratio, content, changes)
    if "trim" in features:
        return EditClass("trim", TRIM, ratio, content, changes)
    if "note" in features:
        return EditClass("note", NOTE, ratio, content, changes)
    return EditClass("cosmetic", COSMETIC, ratio, content, changes)


def _merge_touching(spans: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """One span of spans that touch: "expects" -> "does not expect" is an insertion and a
    replacement side by side, but one change."""
    merged: list[tuple[int, int, int, int]] = []
    for span in spans:
        if merged and merged[-1][1] == span[0] and merged[-1][3] == span[2]:
            merged[-1] = (merged[-1][0], span[1], merged[-1][2], span[3])
        else:
            merged.append(span)
    return merged


def _is_replaced(
    a: _Tokens,
    b: _Tokens,
    spans: list[tuple[int, int, int, int]],
    lines: tuple[list[str], list[str]],
    lo: int,
    tail: int,
) -> bool:
    """Most of the output is gone and most of the final text is new: a rewrite, whatever
    facts it mentions. (A trim also loses most of the output, but adds nothing.)"""
    removed = sum(i2 - i1 for i1, i2, _, _ in spans)
    if removed * 2 <= len(a.words):
        return False  # half or more kept (KEPT_MIN is less), whatever lies outside the region
    outside = sum(len(_line(line)[0]) for line in lines[0][:lo] + lines[0][len(lines[0]) - tail :])
    inserted = sum(j2 - j1 for _, _, j1, j2 in spans)
    kept = 1.0 - removed / max(1, outside + len(a.words))
    new = inserted / max(1, outside + len(b.words))
    return kept < KEPT_MIN and new > 1.0 - KEPT_MIN


def _large(confidence: float, ratio: float, ratio_max: float) -> float:
    """A correction is less sure as the ratio nears a rewrite: linear from half of max."""
    half = ratio_max / 2
    over = 0.0 if ratio <= half or ratio_max <= 0 else (ratio - half) / (ratio_max - half)
    return round(max(0.0, confidence - LARGE_RATIO_PENALTY * min(1.0, over)), 4)
