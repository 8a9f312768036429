"""Where the package's data lives: inside the wheel, or in the repository checkout.

A wheel carries `schemas/`, `fixtures/` and `docs/` under `vesanor_mock/_data/`; a checkout
(an editable install, or tests run from the repository) has them at the top level.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_dir(name: str) -> Path:
    """The folder `name` (`schemas`, `fixtures`, `docs`): packaged data, else the checkout's."""
    packaged = resources.files("vesanor_mock") / "_data" / name
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / name


def doc_topics() -> dict[str, Path]:
    """Every shipped documentation page by topic (`cli` is `docs/cli.md`), sorted by topic."""
    return {page.stem: page for page in sorted(data_dir("docs").glob("*.md"))}
