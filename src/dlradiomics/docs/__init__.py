"""User documentation shipped inside the package, so a pip install has it: `dlradiomics docs TOPIC`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def available_topics() -> list[str]:
    """Names of the shipped pages (`manifest`, ...)."""
    return sorted(Path(entry.name).stem for entry in files(__name__).iterdir() if entry.name.endswith(".md"))


def read_topic(topic: str) -> str:
    """The Markdown text of one shipped page.

    Args:
        topic: a name from `available_topics`.

    Raises:
        KeyError: no such page; the message lists the pages there are.
    """
    if topic not in available_topics():
        raise KeyError(f"no page {topic!r}; pages: {', '.join(available_topics())}")
    return files(__name__).joinpath(f"{topic}.md").read_text(encoding="utf-8")
