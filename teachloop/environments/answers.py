"""Final answers of math problems: extraction, normalisation and equivalence.

Pure functions shared by the `math` and `jsonl` environments.

- Extraction: GSM8K marks the final answer with `#### 42`; MATH puts it in the last
  `\\boxed{...}` (or `\\fbox{...}`), braces balanced. Fallbacks: an "answer is ..." phrase,
  a short one-line reply taken whole, and the last number in the text.
- Normalisation: strips `$`, `\\(...\\)`, `\\left`/`\\right`, spacing commands, units in
  `\\text{...}`, degree and percent signs, thousands separators, trailing `.0`, spaces.
- Equivalence: normalised strings, then numbers within a tolerance, then `math-verify`
  (`math_verify.parse` + `math_verify.verify`, symbolic), which is optional: when it is
  not installed or raises, the answer counts only if the normalised strings match.
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

# Longest answer handed to math-verify (sympy can be slow on huge expressions).
MAX_SYMBOLIC_CHARS = 300
# A reply this short, on one line, with no marker is taken whole as the answer.
MAX_BARE_ANSWER_CHARS = 60

_log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------
_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_MARKER = re.compile(r"####[ \t]*([^\n]*)")
_PHRASE = re.compile(r"answer\s*(?:is|:)\s*:?\s*([^\n]+)", re.IGNORECASE)
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]+\s+[A-Za-z]{2,}")  # two words, not \\commands
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")


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


def last_boxed(text: str) -> str | None:
    """Content of the last well-formed `\\boxed{...}` / `\\fbox{...}`, braces balanced."""
    for match in reversed(list(_BOX.finditer(text))):
        content = _box_content(text, match.end())
        if content is not None and content.strip():
            return content.strip()
    return None


def after_marker(text: str) -> str | None:
    """What follows the last `####` on its line (GSM8K's final-answer marker)."""
    matches = [m.group(1).strip() for m in _MARKER.finditer(text)]
    return matches[-1] if matches and matches[-1] else None


def answer_phrase(text: str) -> str | None:
    """What follows the last "answer is" / "answer:" on its line, without a final period."""
    matches = _PHRASE.findall(text)
    if not matches:
        return None
    found = matches[-1].strip().rstrip(".").strip()
    return found or None


def last_number(text: str) -> str | None:
    """The last number in the text (thousands separators, decimals and a/b fractions kept)."""
    matches = _NUMBER.findall(text)
    return matches[-1] if matches else None


def bare_answer(text: str) -> str | None:
    """A short one-line reply that is not prose, taken whole (a student that answers with
    the answer only, e.g. `\\frac{1}{2}`)."""
    stripped = text.strip()
    if not stripped or "\n" in stripped or len(stripped) > MAX_BARE_ANSWER_CHARS or _PROSE.search(stripped):
        return None
    return stripped


_EXTRACTORS = {
    "gsm8k": (after_marker, last_boxed, last_number),
    "math": (last_boxed, after_marker, answer_phrase, bare_answer, last_number),
    "auto": (last_boxed, after_marker, answer_phrase, bare_answer, last_number),
}


def extract_answer(text: str, style: Style = "auto") -> str | None:
    """A response's final answer: per style, the first extractor that finds one.

    gsm8k: `####` marker, `\\boxed{}`, last number. math and auto: `\\boxed{}`, `####`,
    "the answer is ...", a short bare reply, last number.
    """
    if style not in _EXTRACTORS:
        raise ValueError(f"unknown answer style {style!r}; use one of {', '.join(STYLES)}")
    for extractor in _EXTRACTORS[style]:
        found = extractor(text)
        if found:
            return found
    return None


def reference_answer(solution: str) -> str | None:
    """The final answer in a dataset's solution: `####`, else `\\boxed{}`, else the whole
    text when it is one line (a dataset whose answer column holds the final answer only)."""
    for extractor in (after_marker, last_boxed, _one_line):
        found = extractor(solution)
        if found:
            return strip_math_delimiters(found) or None
    return None


def _one_line(text: str) -> str | None:
    stripped = text.strip()
    return stripped if stripped and "\n" not in stripped else None


# ---------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------
_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_SPACING = re.compile(r"\\[,;:! ]|\\quad|\\qquad")
_TEXT_WHOLE = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}$")
_TEXT_UNIT = re.compile(r"\s*\\(?:text|mbox|mathrm)\{[^{}]*\}\s*$")
_DEGREE = re.compile(r"\^\s*\{?\\circ\}?")
_ASSIGN = re.compile(r"^[a-zA-Z]\s*=\s*(?=\S)")
_NUMBER_WITH_WORDS = re.compile(r"^(-?[\d,]*\.?\d+)\s+[a-zA-Z]{2,}[a-zA-Z ]*$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(r"^(-?\d*\.\d*?)0+$")


def strip_math_delimiters(text: str) -> str:
    """`$x$`, `$$x$$`, `\\(x\\)`, `\\[x\\]` -> `x` (outermost pair only)."""
    text = text.strip()
    for left, right in _DELIMS:
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left) : len(text) - len(right)].strip()
    return text


def _strip_units(text: str) -> str:
    whole = _TEXT_WHOLE.match(text)
    if whole:
        return whole.group(1).strip()
    without = _TEXT_UNIT.sub("", text)
    return without if without.strip() else text


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
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _SPACING.sub(" ", text)
    text = _DEGREE.sub("", text)
    text = text.replace("\\%", "").replace("%", "")
    text = _strip_units(text.strip())
    text = text.strip().rstrip(".").strip()
    text = _ASSIGN.sub("", text)
    with_words = _NUMBER_WITH_WORDS.match(text)
    if with_words:  # "18 dollars" -> "18"
        text = with_words.group(1)
    text = re.sub(r"\s+", "", text)
    return _plain_number(text)


# ---------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------
_FRAC = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$|^(-?)\\frac(\d)(\d)$")
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
        sign = "-" if (frac.group(1) or frac.group(4)) else ""
        num, den = (frac.group(2), frac.group(3)) if frac.group(2) else (frac.group(5), frac.group(6))
        try:
            return float(Fraction(int(sign + num), int(den)))
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
# equivalence
# ---------------------------------------------------------------------------------------
def _symbolic_timeout() -> int | None:
    # math-verify times out through signal.alarm, which only the main thread may use.
    return 5 if threading.current_thread() is threading.main_thread() else None


def symbolic_equal(reference: str, candidate: str) -> bool | None:
    """math-verify's verdict on two extracted answers; None when it is missing or raises."""
    if len(reference) > MAX_SYMBOLIC_CHARS or len(candidate) > MAX_SYMBOLIC_CHARS:
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


def is_equivalent(reference: str | None, candidate: str | None, rel_tol: float = 1e-6) -> bool:
    """Is the candidate final answer the reference one?

    Normalised strings first, then numbers within `rel_tol`, then math-verify's symbolic
    check; without math-verify (or when it raises) only the first two count.
    """
    if not reference or not candidate:
        return False
    ref, cand = normalize_answer(reference), normalize_answer(candidate)
    if not ref or not cand:
        return False
    if ref == cand:
        return True
    ref_num, cand_num = parse_number(ref), parse_number(cand)
    if ref_num is not None and cand_num is not None:
        return numeric_equal(ref_num, cand_num, rel_tol)
    return bool(symbolic_equal(strip_math_delimiters(reference), strip_math_delimiters(candidate)))


def answer_parses(answer: str, style: Style = "auto") -> bool:
    """Is this a well-formed final answer: a number for gsm8k; for math, something
    math-verify can parse (or, without it, a non-empty normalised text with balanced braces)."""
    text = normalize_answer(answer)
    if not text:
        return False
    if style == "gsm8k":
        return parse_number(text) is not None
    if parse_number(text) is not None:
        return True
    if text.count("{") != text.count("}"):
        return False
    return _parses_symbolically(strip_math_delimiters(answer)) is not False


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
