"""Dominick's Finer Foods orange juice sales, from the Debian package `r-cran-bayesm`.

106,139 store x brand x week rows (83 stores, 11 brands, weeks 40-160). The package's
`orangeJuice.rda` is read with `rdata`; no R is needed. Getting it takes `apt-get download` and
`dpkg -x`, which `fetch()` runs into the data folder (no root install, nothing outside it).

Mapping to the canonical sales schema: item = brand, price = the brand's own price per carton,
units = exp(logmove) (cartons sold), promo = deal, feature = feat, and cost = price x (1 - profit
/ 100) (Dominick's `profit` is the gross margin in percent). Dominick's week 1 starts on Thursday
1989-09-14.

Per carton, not per ounce. The source's prices are dollars per ounce (bayesm's help page), but
`logmove` counts cartons and a shopper pays per carton: a quote of $0.04 an ounce, rounded to a
whole cent, moves by 25 % a step and cannot end in .99. Each brand's carton size is the one
bayesm documents (64 oz for most, 96 oz for brands 2 and 6, 128 oz for Dominick's brand 11); the
data confirm it: the per-ounce price times that size is a whole cent in 90-100 % of each brand's
rows (95.3 % overall; the rest are weekly averages of a price change), and no other size gives
that (48 oz: at most 15 %). So the shelf prices are the cents Dominick's charged: $2.99, $3.59.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

NAME = "orange_juice"
PRICE_UNIT = "carton"  # recorded in the prepared manifest: a per-ounce copy is prepared again
TABLES = ("sales", "items", "stores")
DEBIAN_PACKAGE = "r-cran-bayesm"
RDA_PATH = Path("usr/lib/R/site-library/bayesm/data/orangeJuice.rda")
WEEK_ONE = date(1989, 9, 14)
# Brand numbers as documented on bayesm's orangeJuice help page.
BRANDS = {
    1: ("Tropicana Premium", 64),
    2: ("Tropicana Premium", 96),
    3: ("Florida's Natural", 64),
    4: ("Tropicana", 64),
    5: ("Minute Maid", 64),
    6: ("Minute Maid", 96),
    7: ("Citrus Hill", 64),
    8: ("Tree Fresh", 64),
    9: ("Florida Gold", 64),
    10: ("Dominick's", 64),
    11: ("Dominick's", 128),
}


class FetchError(RuntimeError):
    """The Debian package could not be fetched or unpacked."""


def week_start(week: int) -> date:
    return WEEK_ONE + timedelta(weeks=int(week) - 1)


def rda_file(external_dir: Path) -> Path:
    return external_dir / DEBIAN_PACKAGE / RDA_PATH


def fetch(external_dir: Path) -> Path:
    """Download and unpack r-cran-bayesm into `external_dir` (once); return the .rda path."""
    target = rda_file(external_dir)
    if target.exists():
        return target
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise FetchError(
                f"`{tool}` is not available: the orange juice data comes from the Debian package "
                f"{DEBIAN_PACKAGE}; on another system extract {RDA_PATH} from it into "
                f"{external_dir / DEBIAN_PACKAGE}"
            )
    with tempfile.TemporaryDirectory() as tmp:
        deb = _download(Path(tmp))
        external_dir.mkdir(parents=True, exist_ok=True)
        unpacked = external_dir / f".{DEBIAN_PACKAGE}.partial"
        shutil.rmtree(unpacked, ignore_errors=True)
        _run(["dpkg", "-x", str(deb), str(unpacked)], "unpack")
        shutil.rmtree(external_dir / DEBIAN_PACKAGE, ignore_errors=True)
        unpacked.rename(external_dir / DEBIAN_PACKAGE)
    if not target.exists():
        raise FetchError(f"{DEBIAN_PACKAGE} unpacked, but {target} is not in it")
    return target


def _download(folder: Path) -> Path:
    command = ["apt-get", "download", DEBIAN_PACKAGE]
    first = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if first.returncode != 0:  # a fresh machine has no package lists yet
        _run(["apt-get", "update", "-qq"], "refresh the package lists")
        _run(command, "download", cwd=folder)
    debs = sorted(folder.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if not debs:
        raise FetchError(f"apt-get download {DEBIAN_PACKAGE} produced no .deb file")
    return debs[-1]


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(
            f"could not {what} {DEBIAN_PACKAGE} (`{' '.join(command)}` exited "
            f"{result.returncode}): {result.stderr.strip()[-500:]}"
        )


def load(external_dir: Path) -> dict[str, pd.DataFrame]:
    """The data set in the canonical schemas: sales, items (brands) and stores."""
    import rdata  # imported here: only this source needs it

    path = rda_file(external_dir)
    if not path.exists():
        raise FetchError(f"{path} is missing; run `aisle data fetch` first")
    data = rdata.read_rda(str(path))["orangeJuice"]
    yx = data["yx"].reset_index(drop=True)
    brand = yx["brand"].astype(int).to_numpy()
    prices = yx[[f"price{b}" for b in range(1, 12)]].to_numpy(dtype="float64")
    size_oz = np.array([BRANDS[b][1] for b in range(1, 12)], dtype="float64")
    own_price = prices[np.arange(len(yx)), brand - 1] * size_oz[brand - 1]  # $/oz -> $/carton
    weeks = yx["week"].astype(int)
    sales = pd.DataFrame(
        {
            "item_id": pd.Series(brand).astype(str),
            "store_id": yx["store"].astype(int).astype(str),
            "week_start": pd.to_datetime(weeks.map(week_start)),
            "price": own_price,
            "units": np.round(np.exp(yx["logmove"].to_numpy(dtype="float64"))),
            "cost": own_price * (1.0 - yx["profit"].to_numpy(dtype="float64") / 100.0),
            "promo": yx["deal"].astype(int),
            "feature": yx["feat"].astype("float64"),
        }
    )
    items = pd.DataFrame(
        [
            {"item_id": str(b), "name": f"{n} {oz} oz", "category": "orange juice", "size_oz": oz}
            for b, (n, oz) in BRANDS.items()
        ]
    )
    demo = data["storedemo"].reset_index(drop=True)
    stores = demo.rename(columns=str.lower).rename(columns={"store": "store_id"})
    stores["store_id"] = stores["store_id"].astype(int).astype(str)
    return {"sales": sales, "items": items, "stores": stores}
