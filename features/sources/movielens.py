"""MovieLens-100k, read from the files the PyPI package `recbole==1.2.1` ships.

100,000 ratings by 943 users of 1,682 films, 1997-09 to 1998-04. Every rating becomes an
interaction with `event_type=rating`; genres become the item's `category` ('|'-separated).
The package is located without importing it (recbole's own dependencies are not installed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

NAME = "movielens"
TABLES = ("interactions", "items")


class SourceMissingError(RuntimeError):
    """A built-in data set whose package is not installed."""


def dataset_dir() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise SourceMissingError(
            "MovieLens-100k comes from the PyPI package recbole==1.2.1, which is not installed; "
            "run `make venv` (it installs it with --no-deps)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"
    if not (folder / "ml-100k.inter").exists():
        raise SourceMissingError(f"recbole is installed but {folder}/ml-100k.inter is missing")
    return folder


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]  # "user_id:token" -> "user_id"
    return frame


def load() -> dict[str, pd.DataFrame]:
    """The data set in the canonical schemas: interactions and items."""
    folder = dataset_dir()
    inter = _read(folder / "ml-100k.inter")
    interactions = pd.DataFrame(
        {
            "user_id": inter["user_id"],
            "item_id": inter["item_id"],
            "timestamp": pd.to_datetime(inter["timestamp"].astype("int64"), unit="s", utc=True),
            "event_type": "rating",
            "rating": inter["rating"].astype("float64"),
        }
    )
    item = _read(folder / "ml-100k.item")
    items = pd.DataFrame(
        {
            "item_id": item["item_id"],
            "name": _display_names(item["movie_title"], item["release_year"]),
            "category": item["class"].str.split().str.join("|"),
            "release_year": item["release_year"],
        }
    )
    return {"interactions": interactions, "items": items}


def _display_names(titles: pd.Series, years: pd.Series) -> pd.Series:
    """Names as MovieLens' own u.item writes them, "Star Wars (1977)" (recbole splits the year
    off): a reason names the film, and the year tells remakes apart. The one film the source calls
    "unkonwn" gets no name, so answers show its id."""
    year = years.where(years.str.fullmatch(r"\d{4}"))
    named = titles.where(year.isna(), titles + " (" + year.fillna("") + ")")
    return named.where(titles != "unkonwn", None)
