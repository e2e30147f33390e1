"""Held answers that end inside their token budget.

A grammar keeps every token valid, but not the answer whole: a small model can keep
writing one string (``"Sinan_Sinan_Sinan_…``) until ``max_tokens`` cuts it, and a cut
object parses nowhere. Near the end of the budget, ``Closing`` looks for a short way the
grammar allows to finish (close the open string, fill required fields with the least
they allow, close arrays and objects) and, once that way needs nearly all the tokens
left, writes it instead of the model. The answer is then valid and ends with the model's
end-of-text token; the field being written when the budget ran low is cut short.

The way is found greedily: at each step the allowed token that leaves the fewest strings,
arrays and objects open (the longest such token, to fill what must be filled in few
steps). Each token's effect on that count is worked out once per vocabulary, for the
three places a token can start: outside a string, inside one, just after a backslash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Start looking for a way to finish this many tokens (beyond the shortest whole answer)
# before the budget runs out, and take it with this many to spare: one token can open
# several levels at once.
WINDOW = 32
SPARE = 4
OUTSIDE, INSIDE, ESCAPED = 0, 1, 2  # where a token starts: outside a string, in, after "\"
# A token's score: the levels it leaves open first; then whether it writes anything but
# structure (a closed string gets no " ..." tail); then its length (fewer steps).
_LEVEL = 1 << 16
_WORDS = 1 << 8
NEVER = 1 << 62
STRUCTURE = b'"\\'  # what can end a string
LAYOUT = b'"{}[],: '


@dataclass
class Nesting:
    """How deep a JSON text is: open strings, arrays and objects, and a pending escape."""

    depth: int = 0
    place: int = OUTSIDE
    written: int = 0  # bytes of content read: in strings, or words and numbers outside

    def feed(self, data: bytes) -> Nesting:
        """Read ``data`` on (unknown closers are taken at their word: the grammar checks)."""
        for byte in data:
            if self.place == ESCAPED:
                self.place = INSIDE
                self.written += 1
            elif self.place == INSIDE:
                if byte == 0x22:  # the closing quote
                    self.place, self.depth = OUTSIDE, self.depth - 1
                else:
                    self.written += 1
                    self.place = ESCAPED if byte == 0x5C else INSIDE
            elif byte not in LAYOUT:
                self.written += 1
            elif byte == 0x22:
                self.place, self.depth = INSIDE, self.depth + 1
            elif byte in b"{[":
                self.depth += 1
            elif byte in b"}]":
                self.depth -= 1
        return self


@dataclass(frozen=True)
class TokenShapes:
    """Per-token facts closing needs: its bytes, and how it moves the nesting from each start."""

    pieces: list[bytes]  # b"" for special tokens
    score: npt.NDArray[np.int64]  # [place, token]: depth change * _LEVEL - length
    eos: int

    @classmethod
    def of(cls, tokenizer: Any) -> TokenShapes:
        """The shapes of an llguidance tokenizer's vocabulary (about 0.3 s for 50K tokens)."""
        import numpy as np

        size = tokenizer.vocab_size
        pieces = [
            b"" if tokenizer.is_special_token(t) else tokenizer.decode_bytes([t])
            for t in range(size)
        ]
        score = np.zeros((3, size), dtype=np.int64)
        for token, data in enumerate(pieces):
            for place in (OUTSIDE, INSIDE, ESCAPED):
                if place and data.translate(None, STRUCTURE) == data:
                    score[place, token] = _WORDS - len(data)  # text in a string: moves nothing
                    continue
                moved = Nesting(0, place).feed(data)
                score[place, token] = moved.depth * _LEVEL + _WORDS * bool(moved.written)
                score[place, token] -= len(data)
                if place == OUTSIDE and data.lstrip().startswith(b"-"):
                    score[place, token] += 1  # 0, not -0, where a number must be written
        unusable = np.array([not data for data in pieces])
        score[:, unusable] = NEVER  # special tokens are never written by closing
        return cls(pieces, score, int(tokenizer.eos_token))


@dataclass
class Closing:
    """Finishes a held answer within ``budget`` tokens (one call to ``next`` per token)."""

    shapes: TokenShapes
    budget: int
    nesting: Nesting = field(default_factory=Nesting)
    plan: list[int] | None = None  # the tokens being written instead of the model's
    window: int | None = None  # tokens left when looking for a way to finish begins

    def seen(self, token: int) -> None:
        """Follow the answer: ``token`` was picked and given to the grammar."""
        if token < len(self.shapes.pieces):
            self.nesting.feed(self.shapes.pieces[token])

    def next(self, matcher: Any, used: int) -> int | None:
        """The token to write now, after ``used`` answer tokens, or None to let the model pick."""
        if self.plan is not None:
            return self.plan.pop(0) if self.plan else self.shapes.eos
        left = self.budget - used
        if self.window is None:  # the shortest whole answer widens the window
            least = self.shortest(matcher, self.budget)
            self.window = WINDOW + (len(least) if least is not None else 0)
        if left > self.window or matcher.is_stopped():
            return None
        way = self.shortest(matcher, left - 1)  # the end-of-text token takes the last one
        if way is None or not way or len(way) + 1 + SPARE < left:
            return None  # no way to finish (nothing to do), already done, or still room
        self.plan = way
        return self.plan.pop(0)

    def shortest(self, matcher: Any, limit: int) -> list[int] | None:
        """A short token path to an accepting state, or None within ``limit`` tokens."""
        import numpy as np

        probe = matcher.deep_copy()
        nesting = Nesting(self.nesting.depth, self.nesting.place)
        size = len(self.shapes.pieces)
        way: list[int] = []
        while not probe.is_accepting():
            if len(way) >= limit:
                return None
            mask = np.frombuffer(probe.compute_bitmask(), dtype=np.uint8)  # u32 words, LE
            allowed = np.unpackbits(mask, bitorder="little")[:size] > 0
            ranked = np.where(allowed, self.shapes.score[nesting.place], NEVER)
            token = int(ranked.argmin())
            if ranked[token] == NEVER or not probe.consume_token(token):
                return None
            nesting.feed(self.shapes.pieces[token])
            way.append(token)
        return way
