"""Attribute redaction applied before anything is stored.

Built-in rules (on by default per project) blank the values of keys that name secrets and mask credit-card numbers
(Luhn-checked, so order IDs survive) and bearer tokens / JWTs inside values. Projects add their own key or value
rules, replacing with `***` or with a keyed hash so equal secrets stay joinable without being readable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MASK = "***"

# Matched against whole key segments so `gen_ai.usage.input_tokens` or `tokenizer.name` are left alone, and a
# bare `token` followed by count/type is a number or a kind, not a secret (OpenInference's `llm.token_count.prompt`).
DEFAULT_SECRET_KEY_PATTERN = (
    r"(?:^|[._\-\s])(?:password|passwd|pwd|secret|client[_\-]?secret|token(?![._\-](?:counts?|type)(?:$|[._\-\s]))|"
    r"access[_\-]?token|refresh[_\-]?token|"
    r"id[_\-]?token|auth[_\-]?token|authorization|proxy[_\-]?authorization|cookie|set[_\-]cookie|api[_\-]?key|"
    r"x[_\-]api[_\-]key|private[_\-]?key|credentials?|session[_\-]?id)(?:$|[._\-\s])"
)
_CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")
# A credential has a digit or punctuation in it: "invalid bearer token" is prose, "Bearer abc.def" is not.
_BEARER = re.compile(r"(?i)\bbearer\s+(?=[A-Za-z0-9\-._~+/]*[0-9\-._~+/])[A-Za-z0-9\-._~+/]{4,}=*")
# Issuer prefixes of the major card networks (Visa, Mastercard, Amex, Diners, Discover, JCB, UnionPay): a Luhn check
# alone masks about one in ten long numeric IDs.
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[068]|6[05]|62|35)")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}")
# Cheap pre-check: a value without 13 digits in a row-ish, "earer" or "eyJ" cannot match a default value rule.
_DEFAULT_VALUE_HINT = re.compile(r"\d[\d \-]{11,}\d|(?i:earer\s)|eyJ")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class Rule:
    name: str
    target: str  # "key" | "value"
    pattern: re.Pattern[str]
    action: str = "replace"  # "replace" | "hash"


@dataclass
class Redactor:
    """Compiled rules for one project. Key decisions are cached because attribute keys repeat endlessly."""

    rules: list[Rule]
    use_defaults: bool = True
    hash_key: bytes = b""
    counts: Counter[str] = field(default_factory=Counter)
    _key_cache: dict[str, Rule | None] = field(default_factory=dict)
    # Attribute values repeat endlessly too (methods, routes, hosts); short ones that needed no redaction are
    # remembered so the regexes run once per distinct value rather than once per span.
    _clean_values: set[str] = field(default_factory=set)
    _default_key_rule: Rule = field(
        default_factory=lambda: Rule("default: secret key", "key", re.compile(DEFAULT_SECRET_KEY_PATTERN, re.I))
    )

    def __post_init__(self) -> None:
        self._value_rules = [rule for rule in self.rules if rule.target == "value"]
        self._key_rules = [rule for rule in self.rules if rule.target == "key"]
        self.active = self.use_defaults or bool(self.rules)

    def fresh(self) -> Redactor:
        """A copy with its own counters (one per request) sharing the compiled rules and key cache."""
        clone = Redactor(rules=self.rules, use_defaults=self.use_defaults, hash_key=self.hash_key)
        clone._key_cache = self._key_cache
        clone._clean_values = self._clean_values
        return clone

    def _replacement(self, rule: Rule, value: str) -> str:
        if rule.action == "hash":
            digest = hmac.new(self.hash_key, value.encode(), hashlib.sha256).hexdigest()[:16]
            return f"sha256:{digest}"
        return MASK

    def _rule_for_key(self, key: str) -> Rule | None:
        try:
            return self._key_cache[key]
        except KeyError:
            pass
        found: Rule | None = None
        for rule in self._key_rules:
            if rule.pattern.search(key):
                found = rule
                break
        if found is None and self.use_defaults and self._default_key_rule.pattern.search(key):
            found = self._default_key_rule
        if len(self._key_cache) < 100_000:
            self._key_cache[key] = found
        return found

    def _mask_card(self, match: re.Match[str]) -> str:
        digits = re.sub(r"[ \-]", "", match.group(0))
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_valid(digits):
            self.counts["default: card number"] += 1
            return MASK
        return match.group(0)

    def text(self, value: str) -> str:
        """Redact secrets inside a free-text value (attribute values, status messages)."""
        if self.use_defaults and _DEFAULT_VALUE_HINT.search(value):
            value = _CARD_CANDIDATE.sub(self._mask_card, value)
            value, n = _BEARER.subn("Bearer " + MASK, value)
            if n:
                self.counts["default: bearer token"] += n
            value, n = _JWT.subn(MASK, value)
            if n:
                self.counts["default: jwt"] += n
        for rule in self._value_rules:
            new_value, n = rule.pattern.subn(lambda m, r=rule: self._replacement(r, m.group(0)), value)  # type: ignore[misc]
            if n:
                self.counts[rule.name] += n
                value = new_value
        return value

    def attributes(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """Redact a decoded attribute map in place and return it."""
        for key, value in attributes.items():
            rule = self._rule_for_key(key)
            if rule is not None:
                self.counts[rule.name] += 1
                attributes[key] = self._replacement(rule, value if isinstance(value, str) else repr(value))
            elif isinstance(value, str):
                if value in self._clean_values:
                    continue
                redacted = self.text(value)
                if redacted != value:
                    attributes[key] = redacted
                elif len(value) <= 200:
                    if len(self._clean_values) > 50_000:
                        self._clean_values.clear()
                    self._clean_values.add(value)
            elif isinstance(value, (list, dict)):
                attributes[key] = self._nested(value)
        return attributes

    def _nested(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._nested(item) for item in value]
        if isinstance(value, dict):
            return self.attributes(value)
        return value
