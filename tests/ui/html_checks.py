"""Checks on rendered HTML shared by the UI tests: nothing in it may run or leave the page."""

from __future__ import annotations

from html.parser import HTMLParser

#: The only tags the UI writes itself; article text and questions never add any.
ALLOWED_TAGS = {"div", "span", "a", "mark", "details", "summary", "p", "h4", "button"}


class TagCollector(HTMLParser):
    """Every tag and attribute the browser would build from a piece of HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def parse_tags(markup: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = TagCollector()
    parser.feed(markup)
    parser.close()
    return parser.tags


def assert_no_injection(markup: str) -> None:
    for tag, attrs in parse_tags(markup):
        assert tag in ALLOWED_TAGS, f"unexpected tag <{tag}> in rendered HTML"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler attribute {name} in rendered HTML"
            if name == "href":
                assert value is not None and value.startswith("#"), f"non-anchor link {value!r}"
