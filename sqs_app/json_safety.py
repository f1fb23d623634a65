"""What makes a JSON document unsafe to keep: checked without recursion.

Bodies from other producers reach Wipsie unvalidated. Some parse as JSON yet
cannot be stored or handled: PostgreSQL's jsonb and text refuse the NUL
character, `1e400` parses to infinity (which JSON cannot write back), and
deeply nested documents exhaust Python's recursion. `json_problem` names the
first such problem and where it is, walking the document with a stack of its
own, so that even a hostile document costs no recursion.
"""

import math

# Deeper than any message a person writes; far below Python's recursion limit.
MAX_JSON_DEPTH = 64


def json_problem(value: object, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """A sentence naming what is wrong and where (e.g. "a NUL character at data.note"), or None."""
    stack: list[tuple[object, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        where = f" at {path}" if path else ""
        if depth > max_depth:
            return f"nesting deeper than {max_depth} levels{where}"
        if isinstance(node, str):
            if "\x00" in node:
                return f"a NUL character{where}"
        elif isinstance(node, float):
            if not math.isfinite(node):
                return f"a number out of range{where}"
        elif isinstance(node, dict):
            for key, item in node.items():
                if "\x00" in key:
                    return f"a NUL character in a key{where}"
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                stack.append((item, f"{path}[{index}]", depth + 1))
    return None
