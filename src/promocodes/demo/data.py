"""What the demo is made of: its names, people, places and steps. Seeded, so two runs
at the same scale build the same customers, codes and choices."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from promocodes.customers.schemas import CustomerIn
from promocodes.errors import Conflict

SEED = 20_240_601
CUSTOMERS = 10_000

WELCOME = "Welcome 10%"
SUMMER = "Summer Sale 20%"
KIDS = "Kid's Club 10%"
SHIPPING = "Free Shipping"
FLASH = "Flash Weekend 30%"

# The steps ``build`` reports, in order (the CLI's progress bar counts them).
STEPS = (
    "Creating groups and uploading codes",
    "Importing customers",
    "Saving segments",
    "Sending the welcome mailing",
    "Issuing codes by API",
    "Firing campaign events",
    "Redeeming codes",
    "Sending the reminder and the other mailings",
    "Checking stock alerts",
)

FIRST = (
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Ilyas", "Jonas",
    "Katarzyna", "Leon", "Mia", "Noah", "Olivia", "Paul", "Quentin", "Rosa", "Sofia", "Tom",
    "Ursula", "Victor", "Wiebke", "Yusuf", "Zoë", "Jürgen", "Amélie", "Søren", "Mateo", "Lea",
)  # fmt: skip
LAST = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Hoffmann", "Schulz", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "O'Brien",
    "Nowak", "Yılmaz", "Rossi", "Dubois", "García", "Jensen", "Kowalski", "Novák", "Smith",
)  # fmt: skip
CITIES = (
    ("Berlin", 20), ("Hamburg", 12), ("Munich", 14), ("Cologne", 10), ("Frankfurt", 9),
    ("Stuttgart", 7), ("Leipzig", 6), ("Vienna", 9), ("Zurich", 6), ("Amsterdam", 7),
)  # fmt: skip
TIERS = (("bronze", 60), ("silver", 28), ("gold", 12))
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes get typed in


class NotEmpty(Conflict):
    slug = "database-not-empty"
    title = "The database already holds data"


@dataclass
class DemoResult:
    groups: dict[str, int] = field(default_factory=dict)
    codes: int = 0
    customers: int = 0
    segments: dict[str, int] = field(default_factory=dict)
    mailings: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)
    events: int = 0
    api_issued: int = 0
    redemptions: int = 0
    api_key: str = ""


def people(
    rng: random.Random, count: int, customer_id: Callable[[int], str]
) -> Iterator[tuple[int, CustomerIn]]:
    """``count`` customers, each with a line number (for the import report)."""
    cities = [c for c, _ in CITIES]
    city_weights = [w for _, w in CITIES]
    tiers = [t for t, _ in TIERS]
    tier_weights = [w for _, w in TIERS]
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}".lower().replace("'", "")
        yield (
            i + 1,
            CustomerIn(
                customer_id=customer_id(i),
                email=f"{local}.{i + 1}@example.com",
                phone=f"+49 30 {rng.randrange(1_000_000, 9_999_999)}"
                if rng.random() < 0.8
                else None,
                first_name=first,
                last_name=last,
                attributes={
                    "city": rng.choices(cities, city_weights)[0],
                    "tier": rng.choices(tiers, tier_weights)[0],
                    "newsletter": rng.random() < 0.7,
                    "kids": rng.random() < 0.25,
                    "age": rng.randrange(18, 80),
                    "signup_year": rng.randrange(2016, 2026),
                    "lifetime_value": round(rng.lognormvariate(5, 1), 2),
                },
            ),
        )


def segment_trees(groups: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The demo's saved segments by name: attribute filters and promo code filters on
    the demo's groups (by id)."""
    attribute: dict[str, Any] = {"type": "attribute"}
    return {
        "Newsletter subscribers": {**attribute, "name": "newsletter", "op": "eq", "value": True},
        "Gold and silver members": {
            **attribute,
            "name": "tier",
            "op": "in",
            "value": ["gold", "silver"],
        },
        "Berlin and Hamburg": {
            **attribute,
            "name": "city",
            "op": "in",
            "value": ["Berlin", "Hamburg"],
        },
        "Welcome code not redeemed": {
            "type": "issued_from_group",
            "group_id": groups[WELCOME],
            "redeemed": False,
        },
        "Redeemed the welcome code": {
            "type": "issued_from_group",
            "group_id": groups[WELCOME],
            "redeemed": True,
        },
        "Two or more codes": {"type": "issued_count", "op": "gte", "value": 2, "kind": "initial"},
        "Never received a code": {"type": "issued_count", "op": "eq", "value": 0},
        "Gold members with a summer code": {
            "type": "and",
            "filters": [
                {**attribute, "name": "tier", "op": "eq", "value": "gold"},
                {"type": "issued_count", "op": "gte", "value": 1, "group_id": groups[SUMMER]},
            ],
        },
    }
