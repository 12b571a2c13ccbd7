"""A seeded shop simulator: interaction events and weekly store sales, with the ground truth beside.

Generative model:
- Items have a category, a cost, a base price (a markup the shop chose, not the optimum), an
  "appeal" that drives both online popularity and store demand, a latent vector and a constant
  own-price elasticity e in [-3.5, -1.3].
- Prices are set per item x store x week: the base price with small noise, discounted in promotion
  weeks, and raised for the shocked items from a price shock on.
- Users have a Dirichlet preference over categories, a latent vector and a home store whose prices
  they see. A session is a run of views: the category follows the user's preference (pulled
  towards a trend mix after a taste shift), the item follows popularity within the category,
  re-weighted by exp(user . item). A view becomes an add_to_cart with probability
  CART_RATE * (price / base_price) ** e and a cart a purchase with probability BUY_RATE, so
  expected online demand is proportional to (price / base_price) ** e.
- Store sales per item x store x week are Poisson with mean
  base_demand * store size * (price / base_price) ** e * seasonality * feature lift * noise.
Drift knobs switch on at a date (seasonality for the whole span) and the truth records each one:
a taste shift moves what users view; a price shock moves prices, so both tables; seasonality
scales online traffic and store demand; new items get views and sales rows from their date on.

Import its public names from here. Its modules, in the order a run uses them:

  config.py     `SimulatorConfig` and `DriftConfig`: size, span, seed and drift knobs
  world.py      the hidden world: items, users, stores and every week's prices
  events.py     the interaction events: sessions of views, carts and purchases
  sales.py      the weekly store sales
  catalogue.py  the shop's items and stores tables
  truth.py      the ground truth beside them (and `oracle_price`)
  shop.py       `simulate` and its `SimulatedShop`
  files.py      `write_shop`: the shop and its truth on disk
  responses.py  `ResponseModel`: the same world's response to a model's answers (shown lists,
                prices), drawn or in exact expectation
  experiment_streams.py  `simulate_exposures`: an A/B experiment on that model, with its truth
"""

from .config import DriftConfig, SimulatorConfig
from .experiment_streams import POLICIES, ExperimentStreams, Policy, simulate_exposures
from .files import write_shop
from .responses import POSITION_DECAY, SESSION_VIEWS, ResponseModel, examination
from .shop import SimulatedShop, simulate
from .truth import oracle_price
from .world import SEASON_PEAK_DAY

__all__ = [
    "POLICIES",
    "POSITION_DECAY",
    "SEASON_PEAK_DAY",
    "SESSION_VIEWS",
    "DriftConfig",
    "ExperimentStreams",
    "Policy",
    "ResponseModel",
    "SimulatedShop",
    "SimulatorConfig",
    "examination",
    "oracle_price",
    "simulate",
    "simulate_exposures",
    "write_shop",
]
