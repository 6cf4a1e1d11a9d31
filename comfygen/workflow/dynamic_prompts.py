"""The frontend's dynamic prompts: comments and `{a|b}` choices in `dynamicPrompts` text widgets."""

from __future__ import annotations

import random
import re

_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//.*")


def resolve_dynamic_prompt(text: str, rng: random.Random) -> tuple[str, int]:
    """The frontend's dynamic prompts: strip `//` and `/* */` comments, pick one `{a|b}` choice;
    also say how many real choices (two options or more) were made."""
    picks = [0]
    return _process(text, rng, picks), picks[0]


def _process(text: str, rng: random.Random, picks: list[int]) -> str:
    text = _COMMENTS.sub("", text)
    pos = 0

    def escape() -> str:
        nonlocal pos
        out = "\\" + (text[pos] if pos < len(text) else "undefined")
        pos += 1
        return out

    def choice_block() -> str:
        nonlocal pos
        options, current, depth = [], "", 0
        while pos < len(text):
            ch = text[pos]
            pos += 1
            if ch == "\\":
                current += escape()
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                if not depth:
                    break
                depth -= 1
            elif ch == "|" and not depth:
                options.append(current)
                current = ""
                continue
            current += ch
        options.append(current)
        picks[0] += len(options) > 1
        return _process(rng.choice(options), rng, picks)

    result = ""
    while pos < len(text):
        ch = text[pos]
        pos += 1
        result += escape() if ch == "\\" else choice_block() if ch == "{" else ch
    return re.sub(r"\\([{}|])", r"\1", result)
