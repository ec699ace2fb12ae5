"""Final answers of math problems: extraction, normalisation and equivalence.

Pure functions shared by the `math` and `jsonl` environments. Every metric rests on them,
so the rule is: no credit unless a clearly delimited final answer matches the reference.

Response -> final answer (`extract_answer`):

- A response states its final answer after `####` (GSM8K) or in `\\boxed{...}` /
  `\\fbox{...}` (MATH, braces balanced). When it has several, the last one in the text
  counts, whatever its marker: an answer followed by a contradicting final answer is
  scored on the final one.
- Without those markers: an explicit "the answer is x" / "Answer: x" phrase (the last one;
  x runs to the end of its sentence), else a short one-line reply that is the answer alone
  (`42`, `$18`, `18 dollars`, `\\frac{1}{2}`, `x = 5`). For gsm8k such a bare reply must be
  a number; for math it must not be prose (two words) or garbage (a letter three times in a
  row).
- Nothing else. There is no "last number in the text" fallback: a gsm8k-style response that
  ends with its number but without `####` gets no credit unless the whole reply is that
  number. The math environment's prompt asks for `#### <answer>` (or `\\boxed{}`), students
  trained on its data learn that format, and a last-number rule scores garbage
  (`aaaa7aaaa`, "5 or maybe 6") as correct.
- A truncated response has no answer: when the last marker in the text is a `\\boxed{`
  never closed (or empty) or a `####` with nothing after it, no earlier answer stands in.

Reference -> acceptable answers (`reference_answers`). A reference may be free text:
`X, i.e. ...` and `X (i.e., ...)` give X; the explanation is a second acceptable answer only
when it is itself a well-formed answer (`\\frac12, i.e. 0.5`), prose is dropped. In
`X, or equivalently Y` (or `X (equivalently Y)`) every stated alternative counts. `(e.g. ...)`
is dropped. A reference with `####`, `\\boxed{}` or "the answer is" is read like a response.

Normalisation (`normalize_answer`): strips `$`, `\\(...\\)`, `\\left`/`\\right`, spacing
commands, units (`\\text{cm}`, `18 dollars`: at most three unit words, none of them a hedge
such as "or"), degree and percent signs, thousands separators (`1,234`, `1{,}234`), trailing
`.0`, `x =`, spaces; `\\dfrac` -> `\\frac`, `\\frac12` -> `\\frac{1}{2}`, `\\sqrt2` -> `\\sqrt{2}`,
`π` -> `\\pi`.

Equivalence (`is_equivalent`): the candidate matches any acceptable reference answer when
the normalised strings are equal, else when both are numbers equal within a relative
tolerance (`0.5` = `\\frac{1}{2}`), else by `math-verify`'s symbolic check (optional: when
it is not installed or raises, only the first two count). gsm8k style (and the jsonl
`numeric` scorer) compares numbers only, so `#### 2+2` is not the answer 4. math-verify
reads adjacent letters as a product (to it `aaaa2a` is `2a^5`), so it is asked only when
both sides are well-formed short answers (`is_well_formed`): one line of at most
`MAX_SYMBOLIC_CHARS` characters, balanced brackets, and no run of letters other than a
known function name or up to three distinct variables.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from fractions import Fraction
from typing import Literal

Style = Literal["gsm8k", "math", "auto"]
STYLES: tuple[str, ...] = ("gsm8k", "math", "auto")

# Longest answer handed to math-verify: final answers are short, and sympy is slow on big ones.
MAX_SYMBOLIC_CHARS = 100
# A reply this short, on one line, with no marker may be taken whole as the answer.
MAX_BARE_ANSWER_CHARS = 60

_log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------
_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_MARKER = re.compile(r"####[ \t]*([^\n]*)")
_PHRASE = re.compile(r"\b(?:final\s+)?answer\s*(?:is\b|:|=)\s*:?[ \t]*([^\n]*)", re.IGNORECASE)
# Where an answer phrase's answer ends: a sentence end, or a clause that explains it.
_PHRASE_END = re.compile(
    r"\.(?:\s|$)|[,;]?\s+(?=(?:because|since)\b)|[,;]\s+(?=i\.\s?e\.|(?:that is|which|so|and|but|as)\b)",
    re.IGNORECASE,
)
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]+\s+[A-Za-z]{2,}")  # two words, not \\commands
_TRIPLE = re.compile(r"([A-Za-z])\1\1")  # the same letter three times: garbage, not math


def _balanced(text: str, start: int) -> str | None:
    """The text inside the brace group opening at `text[start]`, or None if unbalanced."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def _box_content(text: str, end: int) -> str | None:
    """The argument of a `\\boxed` that ends at `end`: `{...}` or one bare token (`\\boxed 5`)."""
    rest = text[end:]
    stripped = rest.lstrip()
    if stripped.startswith("{"):
        return _balanced(text, end + len(rest) - len(stripped))
    if rest[:1].isspace():
        token = re.match(r"[^\s$]+", stripped)
        return token.group(0) if token else None
    return None


def _last_delimited(text: str) -> tuple[str, str | None] | None:
    """The last `####` or `\\boxed{}` in the text, as (kind, content); content is None when
    that marker holds nothing (a box never closed or empty, a `####` ending its line)."""
    boxes = list(_BOX.finditer(text))
    markers = list(_MARKER.finditer(text))
    box = boxes[-1] if boxes else None
    marker = markers[-1] if markers else None
    if box is None and marker is None:
        return None
    if marker is None or (box is not None and box.start() > marker.start()):
        assert box is not None
        content = _box_content(text, box.end())
        return "box", content.strip() if content and content.strip() else None
    found = marker.group(1).strip()
    return "marker", found or None


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}`; None when there is none or the last
    one is never closed or empty (a truncated answer: no earlier box stands in)."""
    boxes = list(_BOX.finditer(text))
    if not boxes:
        return None
    content = _box_content(text, boxes[-1].end())
    return content.strip() if content and content.strip() else None


def answer_phrase(text: str) -> str | None:
    """What follows the last "the answer is" / "Answer:" on its line, up to the end of its
    sentence or an explaining clause, without markdown emphasis or a final period."""
    matches = _PHRASE.findall(text)
    if not matches:
        return None
    found = matches[-1]
    end = _PHRASE_END.search(found)
    if end:
        found = found[: end.start()]
    found = found.strip().strip("*").strip().rstrip(".").strip()
    return found or None


def bare_answer(text: str, style: Style = "auto") -> str | None:
    """A short one-line reply that is the answer alone, taken whole: for gsm8k a number
    (`1,234`, `$18`, `18 dollars`); otherwise a reply that is neither prose nor garbage."""
    stripped = text.strip().strip("*").strip()
    if not stripped or "\n" in stripped or len(stripped) > MAX_BARE_ANSWER_CHARS or _TRIPLE.search(stripped):
        return None
    if style == "gsm8k":
        return stripped if parse_number(stripped) is not None else None
    return None if _PROSE.search(stripped) else stripped


def extract_answer(text: str, style: Style = "auto") -> str | None:
    """A response's final answer, or None when it states none (see the module docstring):
    the last `####` / `\\boxed{}` (None when that one is truncated), else the last "the
    answer is ..." phrase, else the whole reply when it is a bare answer."""
    if style not in STYLES:
        raise ValueError(f"unknown answer style {style!r}; use one of {', '.join(STYLES)}")
    delimited = _last_delimited(text)
    if delimited is not None:
        return delimited[1]
    return answer_phrase(text) or bare_answer(text, style)


def reference_answer(solution: str) -> str | None:
    """The final answer in a dataset's solution: the last `####` / `\\boxed{}`, else the whole
    text when it is one line (a dataset whose answer column holds the final answer only)."""
    delimited = _last_delimited(solution)
    found = delimited[1] if delimited is not None else _one_line(solution)
    return (strip_math_delimiters(found) or None) if found else None


def _one_line(text: str) -> str | None:
    stripped = text.strip()
    return stripped if stripped and "\n" not in stripped else None


# ---------------------------------------------------------------------------------------
# references: free text -> acceptable final answers
# ---------------------------------------------------------------------------------------
_NOTE_WORDS = r"i\.\s?e\.|e\.\s?g\.|or\s+equivalently|equivalently|that\s+is"
_PAREN_NOTE = re.compile(rf"\(\s*({_NOTE_WORDS})\s*[,:]?\s*", re.IGNORECASE)
_INLINE_NOTE = re.compile(
    r"\s*(?:[,;]\s*(i\.\s?e\.|e\.\s?g\.|or\s+equivalently|equivalently|that\s+is)"
    r"|\s(i\.\s?e\.|or\s+equivalently|equivalently))\s*[,:]?\s*",
    re.IGNORECASE,
)


def _note_kind(words: str) -> Literal["same", "explain", "drop"]:
    words = words.lower()
    if "equivalently" in words:
        return "same"
    return "drop" if words.startswith("e.") else "explain"


def _closing_paren(text: str, start: int) -> int | None:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def reference_answers(reference: str) -> list[str]:
    """The acceptable final answers of a reference, which may be free text (see the module
    docstring): `X, or equivalently Y` -> [X, Y]; `X (i.e., <prose>)` -> [X]."""
    text = reference.strip()
    delimited = _last_delimited(text)
    if delimited is not None:
        text = delimited[1] or ""
    else:
        text = answer_phrase(text) or text
    notes: list[tuple[str, str]] = []
    while (paren := _PAREN_NOTE.search(text)) is not None:
        close = _closing_paren(text, paren.start())
        inner_end = close if close is not None else len(text)
        notes.append((_note_kind(paren.group(1)), text[paren.end() : inner_end]))
        text = text[: paren.start()] + (text[close + 1 :] if close is not None else "")
    parts = _INLINE_NOTE.split(text)
    # split() with two groups: [first, word, word, segment, word, word, segment, ...]
    candidates = [parts[0]]
    for index in range(1, len(parts) - 2, 3):
        notes.append((_note_kind(parts[index] or parts[index + 1] or ""), parts[index + 2]))
    for kind, segment in notes:
        if kind == "same" or (kind == "explain" and is_well_formed(_clean_alternative(segment))):
            candidates.append(segment)
    out: list[str] = []
    for candidate in candidates:
        cleaned = _clean_alternative(candidate)
        if cleaned and cleaned not in out:
            out.append(cleaned)
    return out


def _clean_alternative(text: str) -> str:
    text = text.strip().rstrip(".,;:").strip()
    if text.lower().startswith("or "):
        text = text[3:]
    return strip_math_delimiters(text)


# ---------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------
_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_SPACING = re.compile(r"\\[,;:! ]|\\quad|\\qquad")
_TEXT_WHOLE = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}$")
_TEXT_UNIT = re.compile(r"\s*\\(?:text|mbox|mathrm)\{([^{}]*)\}(?:\^\{?\d\}?)?\s*$")
_DEGREE = re.compile(r"\^\s*\{?\\circ\}?")
_ASSIGN = re.compile(r"^[a-zA-Z]\s*=\s*(?=\S)")
_NUMBER_WITH_WORDS = re.compile(r"^(-?[\d,]*\.?\d+)\s+([a-zA-Z][a-zA-Z ]*(?:\^\{?\d\}?)?)$")
_UNIT_WORD = re.compile(r"^[a-zA-Z]{1,15}(?:\^\{?\d\}?)?$")
# Words after a number that make it a hedge or a wrong statement, not a unit.
# fmt: off
_HEDGES = frozenset({
    "or", "and", "but", "not", "no", "nor", "maybe", "perhaps", "probably", "possibly", "wait",
    "actually", "approximately", "about", "roughly", "nearly", "almost", "around", "than", "more",
    "less", "plus", "minus", "times", "over", "divided", "is", "are", "wrong", "incorrect"
})
# fmt: on
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(r"^(-?\d*\.\d*?)0+$")
_SHORT_FRAC = re.compile(r"\\frac(\d)(\d)")
_SHORT_FRAC_NUM = re.compile(r"\\frac(\d)\{")
_SHORT_FRAC_DEN = re.compile(r"\\frac\{([^{}]*)\}(\d)")
_SHORT_SQRT = re.compile(r"\\sqrt(\d)")
_UNICODE = {"−": "-", "π": "\\pi", "∞": "\\infty", "°": "", "{,}": ",", "\\displaystyle": ""}


def strip_math_delimiters(text: str) -> str:
    """`$x$`, `$$x$$`, `\\(x\\)`, `\\[x\\]` -> `x` (outermost pair only)."""
    text = text.strip()
    for left, right in _DELIMS:
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left) : len(text) - len(right)].strip()
    return text


def _is_unit(words: str) -> bool:
    """`cm`, `square feet`, `m^2`: at most three words, none a hedge, none garbage."""
    parts = words.split()
    return (
        0 < len(parts) <= 3
        and all(_UNIT_WORD.match(p) and p.lower() not in _HEDGES for p in parts)
        and not _TRIPLE.search(words)
    )


def _strip_units(text: str) -> str:
    whole = _TEXT_WHOLE.match(text)
    if whole:
        return whole.group(1).strip()
    unit = _TEXT_UNIT.search(text)
    if unit and text[: unit.start()].strip() and _is_unit(unit.group(1)):
        return text[: unit.start()]
    return text


def _plain_number(text: str) -> str:
    """Number spellings made canonical: `1,234` -> `1234`, `3.50` -> `3.5`, `3.0` -> `3`, `.5` -> `0.5`."""
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    trimmed = _DECIMAL.match(text)
    if trimmed:
        text = trimmed.group(1).rstrip(".")
    if text.startswith("."):
        text = "0" + text
    elif text.startswith("-."):
        text = "-0" + text[1:]
    return "0" if text == "-0" else text


def normalize_answer(answer: str) -> str:
    """A canonical spelling of a final answer, for string comparison."""
    text = strip_math_delimiters(answer)
    text = text.replace("\\$", "").replace("$", "")
    for old, new in _UNICODE.items():
        text = text.replace(old, new)
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _SPACING.sub(" ", text)
    text = _DEGREE.sub("", text)
    text = text.replace("\\%", "").replace("%", "")
    text = _strip_units(text.strip())
    text = text.strip().rstrip(".").strip()
    text = _ASSIGN.sub("", text)
    with_words = _NUMBER_WITH_WORDS.match(text)
    if with_words and _is_unit(with_words.group(2)):  # "18 dollars" -> "18"
        text = with_words.group(1)
    text = re.sub(r"\s+", "", text)
    text = _SHORT_FRAC.sub(r"\\frac{\1}{\2}", text)
    text = _SHORT_FRAC_NUM.sub(r"\\frac{\1}{", text)
    text = _SHORT_FRAC_DEN.sub(r"\\frac{\1}{\2}", text)
    text = _SHORT_SQRT.sub(r"\\sqrt{\1}", text)
    return _plain_number(text)


# ---------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------
_FRAC = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_PLAIN = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_RATIO = re.compile(r"^(-?\d+)/(-?\d+)$")


def parse_number(answer: str) -> float | None:
    """The value of a plain numeric answer (`1,234`, `-3.5`, `3/4`, `\\frac{1}{2}`, `50\\%`), else None."""
    text = normalize_answer(answer)
    if _PLAIN.match(text):
        return float(text)
    ratio = _RATIO.match(text)
    if ratio:
        return float(Fraction(int(ratio.group(1)), int(ratio.group(2)))) if int(ratio.group(2)) else None
    frac = _FRAC.match(text)
    if frac:
        try:
            return float(Fraction(int(frac.group(1) + frac.group(2)), int(frac.group(3))))
        except ZeroDivisionError:
            return None
    return None


def numeric_equal(a: float, b: float, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    """Equal within a relative tolerance (or an absolute one near zero)."""
    if math.isnan(a) or math.isnan(b):
        return False
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def numbers_match(reference: str, candidate: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    """Both answers are numbers and equal within the tolerance."""
    ref, cand = parse_number(reference), parse_number(candidate)
    return ref is not None and cand is not None and numeric_equal(ref, cand, rel_tol, abs_tol)


# ---------------------------------------------------------------------------------------
# well-formed answers (the guard in front of math-verify)
# ---------------------------------------------------------------------------------------
_COMMAND = re.compile(r"\\[A-Za-z]+")
_LETTER_RUN = re.compile(r"[A-Za-z]+")
_SPACED_LETTERS = re.compile(r"[A-Za-z]\s+[A-Za-z]")
# fmt: off
_KNOWN_WORDS = frozenset({
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "exp", "sqrt", "pi", "inf", "infty", "mod", "gcd", "lcm", "max", "min", "deg",
    "or", "and"
})
# fmt: on


def is_well_formed(answer: str) -> bool:
    """Is this a short final answer that a symbolic checker may read: a number, or one line
    of at most MAX_SYMBOLIC_CHARS characters, balanced brackets, and letters only as
    \\commands, known function names or up to three distinct variables in a row (no
    `aaaa2aaa`, no `x2`, no words)."""
    text = strip_math_delimiters(answer)
    if not text or "\n" in text or len(text) > MAX_SYMBOLIC_CHARS:
        return False
    if parse_number(text) is not None:
        return True
    if _TRIPLE.search(text) or text.count("{") != text.count("}"):
        return False
    if text.count("(") + text.count("[") != text.count(")") + text.count("]"):
        return False
    plain = _COMMAND.sub("#", text)
    if _SPACED_LETTERS.search(plain):
        return False
    for run in _LETTER_RUN.finditer(plain):
        word = run.group(0)
        if word.lower() in _KNOWN_WORDS:
            continue
        if len(word) > 3 or len(set(word)) < len(word) or plain[run.end() : run.end() + 1].isdigit():
            return False
    return True


# ---------------------------------------------------------------------------------------
# equivalence
# ---------------------------------------------------------------------------------------
def _symbolic_timeout() -> int | None:
    # math-verify times out through signal.alarm, which only the main thread may use.
    return 5 if threading.current_thread() is threading.main_thread() else None


def symbolic_equal(reference: str, candidate: str) -> bool | None:
    """math-verify's verdict on two extracted answers; None when either is not a well-formed
    short answer (`is_well_formed`), or math-verify is missing or raises."""
    if not is_well_formed(reference) or not is_well_formed(candidate):
        return None
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    timeout = _symbolic_timeout()
    try:
        gold = parse(f"${reference}$", parsing_timeout=timeout, raise_on_error=True)
        pred = parse(f"${candidate}$", parsing_timeout=timeout, raise_on_error=True)
        if not gold or not pred:
            return None
        return bool(verify(gold, pred, timeout_seconds=timeout, raise_on_error=True))
    except Exception as exc:  # noqa: BLE001 - any failure of the optional checker means "no verdict"
        _log.debug("math-verify failed on %r vs %r: %s", reference, candidate, exc)
        return None


def _same_answer(reference: str, candidate: str, rel_tol: float, symbolic: bool) -> bool:
    ref, cand = normalize_answer(reference), normalize_answer(candidate)
    if not ref or not cand:
        return False
    if ref == cand:
        return True
    ref_num, cand_num = parse_number(ref), parse_number(cand)
    if ref_num is not None and cand_num is not None:
        return numeric_equal(ref_num, cand_num, rel_tol)
    if not symbolic:
        return False
    return bool(symbolic_equal(strip_math_delimiters(reference), strip_math_delimiters(candidate)))


def is_equivalent(reference: str | None, candidate: str | None, rel_tol: float = 1e-6, symbolic: bool = True) -> bool:
    """Is the candidate final answer one of the reference's acceptable answers?

    Normalised strings first, then numbers within `rel_tol`, then (with `symbolic`) math-verify
    on well-formed answers; without math-verify (or when it raises) only the first two count.
    """
    if not reference or not candidate:
        return False
    return any(_same_answer(alt, candidate, rel_tol, symbolic) for alt in reference_answers(reference))


def final_answer_matches(response: str, reference: str, style: Style = "auto", rel_tol: float = 1e-6) -> bool:
    """The math scorer: the response's final answer (`extract_answer`) is one of the
    reference's acceptable answers; gsm8k style compares numbers and strings only."""
    return is_equivalent(reference, extract_answer(response, style), rel_tol, symbolic=style != "gsm8k")


def final_number_matches(response: str, reference: str, rel_tol: float = 1e-6) -> bool:
    """The numeric scorer: the response's final answer (gsm8k rules) is a number equal to one
    of the reference's within `rel_tol`."""
    found = extract_answer(response, "gsm8k")
    return found is not None and any(numbers_match(alt, found, rel_tol) for alt in reference_answers(reference))


def references_agree(first: str, second: str) -> bool:
    """Do two references (say an example's answer and its solution's) share an acceptable answer?"""
    return any(is_equivalent(first, alt) for alt in reference_answers(second))


def answer_parses(answer: str, style: Style = "auto") -> bool:
    """Is this a well-formed reference: its (first) final answer a number for gsm8k; for math,
    something math-verify can parse (or, without it, a non-empty normalised text with
    balanced braces)."""
    alternatives = reference_answers(answer)
    if not alternatives:
        return False
    primary = alternatives[0]
    text = normalize_answer(primary)
    if not text:
        return False
    if style == "gsm8k":
        return parse_number(text) is not None
    if parse_number(text) is not None:
        return True
    if text.count("{") != text.count("}"):
        return False
    return _parses_symbolically(strip_math_delimiters(primary)) is not False


def _parses_symbolically(answer: str) -> bool | None:
    """True/False when math-verify can tell, None when it is missing or raises."""
    if len(answer) > MAX_SYMBOLIC_CHARS:
        return None
    try:
        from math_verify import parse
    except ImportError:
        return None
    try:
        parsed = parse(f"${answer}$", parsing_timeout=_symbolic_timeout(), raise_on_error=True)
    except Exception:  # noqa: BLE001
        return None
    return any(not isinstance(item, str) for item in parsed)


# ---------------------------------------------------------------------------------------
# dataset helpers
# ---------------------------------------------------------------------------------------
def canonical_answer(answer: str) -> str:
    """A reference answer as stored: numbers canonical (`1,234` -> `1234`, `$18.00` -> `18`),
    anything else only without its outer math delimiters."""
    text = strip_math_delimiters(answer)
    normal = normalize_answer(text)
    return normal if _PLAIN.match(normal) else text


def detect_style(solutions: list[str]) -> Literal["gsm8k", "math"]:
    """gsm8k when the solutions use `####` (or, without markers, all answers are numbers); else math."""
    marked = sum("####" in s for s in solutions)
    boxed = sum(bool(_BOX.search(s)) for s in solutions)
    if marked or boxed:
        return "gsm8k" if marked >= boxed else "math"
    finals = [reference_answer(s) for s in solutions]
    numeric = all(f is not None and parse_number(f) is not None for f in finals if f is not None)
    return "gsm8k" if numeric and any(finals) else "math"
