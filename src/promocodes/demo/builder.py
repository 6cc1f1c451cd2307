"""Building the demo: a lived-in example in an empty database (``promocodes demo``,
``make demo``).

Everything goes through the real services — uploads, the customer import, issuance by
API, mailings sent by a worker, campaign events, redemptions — so every counter, history
row and report is exactly what real use would have left. This module runs the steps, each
in transactions of its own (as the CLI does).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from promocodes.apikeys import service as apikeys
from promocodes.codes import alerts, issuance, redemption, uploads
from promocodes.codes import service as groups
from promocodes.codes.importer import read_text
from promocodes.codes.schemas import GroupCreate
from promocodes.config import Settings
from promocodes.customers import service as customers
from promocodes.db import Database
from promocodes.demo import data, service
from promocodes.demo.data import (
    CODE_ALPHABET,
    CUSTOMERS,
    FLASH,
    KIDS,
    SEED,
    SHIPPING,
    STEPS,
    SUMMER,
    WELCOME,
    DemoResult,
    NotEmpty,
)
from promocodes.messaging import campaigns, mailings
from promocodes.messaging.schemas import CampaignIn, MailingCreate
from promocodes.models import utcnow
from promocodes.segments import service as segments
from promocodes.segments.schemas import SegmentCreate
from promocodes.worker import run_until


class _Builder:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        scale: float,
        progress: Callable[[str], None],
        force: bool,
    ) -> None:
        self.db = db
        self.settings = settings
        self.scale = scale
        self.progress = progress
        self.force = force
        self.rng = random.Random(SEED)
        self.result = DemoResult()
        # Names the demo uses get a " (2)", " (3)"… when forced onto a database that
        # already has them, and codes a matching prefix, so a forced run never collides.
        self.suffix = ""
        self.tag = ""

    def n(self, full: int, least: int = 1) -> int:
        return max(least, round(full * self.scale))

    def name(self, base: str) -> str:
        return base + self.suffix

    # --- steps -------------------------------------------------------------------------

    def run(self) -> DemoResult:
        with self.db.write() as s:
            held = service.holdings(s)
            if held and not self.force:
                what = ", ".join(f"{n:,} {name}" for name, n in held.items())
                raise NotEmpty(
                    f"the database already holds data ({what}); the demo only fills an "
                    "empty one (use --force to add it anyway)"
                )
            self._pick_suffix(s, forced=bool(held))
        steps: list[Callable[[], None]] = [
            self.make_groups,
            self.import_customers,
            self.save_segments,
            self.welcome_mailing,
            self.api_issues,
            self.campaign_events,
            self.redemptions,
            self.later_mailings,
            self.stock_alerts,
        ]
        for label, step in zip(STEPS, steps, strict=True):
            self.progress(label)
            step()
        return self.result

    def _pick_suffix(self, s: Session, *, forced: bool) -> None:
        # A forced run always takes a tag (2, 3, …): its customer ids carry it, so the
        # demo adds customers beside the ones already there and never updates theirs.
        n = 2 if forced else 1
        while True:
            if n > 1:
                self.suffix, self.tag = f" ({n})", str(n)
            if service.names_free(s, f"{WELCOME}{self.suffix}", self.customer_id(0)[:-5]):
                return
            n += 1

    def customer_id(self, i: int) -> str:
        return f"C{self.tag}-{i + 1:05d}" if self.tag else f"C{i + 1:05d}"

    def _codes(self, prefix: str, count: int) -> list[str]:
        seen: set[str] = set()
        while len(seen) < count:
            seen.add(f"{prefix}{self.tag}-" + "".join(self.rng.choices(CODE_ALPHABET, k=8)))
        return sorted(seen, key=lambda _: self.rng.random())

    def _upload(self, s: Session, group_id: int, lines: list[str], filename: str) -> int:
        report = uploads.upload_codes(
            s,
            group_id,
            read_text("\n".join(lines)),
            source="web",
            filename=filename,
            batch_size=self.settings.upload_batch_size,
        )
        assert report.upload_id is not None
        self.result.codes += report.added
        return report.upload_id

    def _group(self, s: Session, base: str, **fields: Any) -> int:
        group = groups.create_group(s, GroupCreate(name=self.name(base), **fields))
        self.result.groups[base] = group.id
        return group.id

    def make_groups(self) -> None:
        now = utcnow()
        with self.db.write() as s:
            welcome = self._group(
                s,
                WELCOME,
                description="10% off the first order, for every new subscriber.",
                low_stock_threshold=self.n(1_000),
            )
            first = self._codes("WELCOME", self.n(15_000))
            self._upload(s, welcome, first, "welcome-batch-1.txt")
            # The second file has what real files have: a few codes of the first one
            # again and lines that are not codes at all (shown in its upload report).
            second = self._codes("WELCOME", self.n(5_000))
            bad = ["see attached", "WELCOME 10 PERCENT", "WELCOME-€URO"]
            self._upload(s, welcome, [*second, *first[:25], *bad], "welcome-batch-2.csv")
            # A handful of codes leaked on a coupon site and were blocked.
            for code in second[-5:]:
                redemption.block(s, code)

            summer = self._group(
                s,
                SUMMER,
                description="The summer sale. Ends with the season.",
                valid_until=now + timedelta(days=60),
                low_stock_threshold=self.n(500),
                # Also printed on the in-store flyers: redeemed without being sent.
                redeem_unissued=True,
            )
            self._upload(s, summer, self._codes("SUMMER", self.n(15_000)), "summer-sale.txt")
            # Last year's file, uploaded by mistake and withdrawn.
            wrong = self._upload(s, summer, self._codes("SUMMER23", self.n(500)), "summer-23.txt")
            self.result.codes -= uploads.withdraw_upload(s, wrong).withdrawn

            kids = self._group(
                s,
                KIDS,
                description="For families who joined the Kid's Club.",
                low_stock_threshold=self.n(200),
            )
            self._upload(s, kids, self._codes("KIDS", self.n(5_000)), "kids-club.txt")

            flash = self._group(
                s,
                FLASH,
                description="48 hours only: 30% off everything.",
                valid_until=now + timedelta(days=3),
            )
            self._upload(s, flash, self._codes("FLASH", self.n(2_000)), "flash-weekend.txt")

            # Free Shipping gets its codes once its segment's size is known (see
            # later_mailings): its mailing leaves only a few, so it shows as low on stock.
            self._group(
                s,
                SHIPPING,
                description="Free shipping for gold and silver members.",
                low_stock_threshold=self.n(250),
            )

    def import_customers(self) -> None:
        with self.db.write() as s:
            people = data.people(self.rng, self.n(CUSTOMERS, 10), self.customer_id)
            report = customers.import_customers(s, people)
        self.result.customers = report.created + report.updated

    def _segment(self, s: Session, base: str, tree: dict[str, Any]) -> int:
        data = SegmentCreate.model_validate({"name": self.name(base), "filter": tree})
        segment_id = segments.create(s, data).id
        self.result.segments[base] = segment_id
        return segment_id

    def save_segments(self) -> None:
        with self.db.write() as s:
            for base, tree in data.segment_trees(self.result.groups).items():
                self._segment(s, base, tree)

    def _mailing(self, base: str, segment: str, subject: str, body: str, *, send: bool) -> None:
        with self.db.write() as s:
            mailing = mailings.create(
                s,
                MailingCreate(
                    name=self.name(base),
                    segment_id=self.result.segments[segment],
                    subject=subject,
                    body_text=body,
                ),
            )
            self.result.mailings[base] = mailing.id
            if send:
                # A forced run may share the database with other customers the
                # segment also selects: then send what the stock covers.
                mailings.send(s, mailing.id, settings=self.settings, allow_partial=self.force)
        if send:
            self._wait_sent(mailing.id)

    def _wait_sent(self, mailing_id: int) -> None:
        """Work the mailing's chunks here; when a running server's worker holds some of
        them, wait for it: the next steps read what this mailing issued."""
        while True:
            run_until(self.db, self.settings)
            with self.db.read() as s:
                if mailings.get(s, mailing_id).status != "sending":
                    return
            time.sleep(0.2)

    def welcome_mailing(self) -> None:
        self._mailing(
            "Welcome offer",
            "Newsletter subscribers",
            "Your welcome gift, {{ client.first_name }}",
            "Hi {{ client.first_name }},\n\nthanks for subscribing! Take 10% off your next "
            f"order with the code {{{{ client.promocode('{self.name(WELCOME)}') }}}}.\n",
            send=True,
        )

    def _refs(
        self, s: Session, count: int, *, kids_only: bool = False
    ) -> list[customers.CustomerRef]:
        found = service.customers(s, kids_only=kids_only)
        return self.rng.sample(found, min(count, len(found)))

    def api_issues(self) -> None:
        """The shop's checkout asks for Flash Weekend codes over the API."""
        with self.db.write() as s:
            key, token = apikeys.create(s, self.name("Shop checkout"))
            self.result.api_key = token
            flash = self.result.groups[FLASH]
            for i, ref in enumerate(self._refs(s, self.n(300))):
                issuance.issue_initial(
                    s,
                    ref,
                    flash,
                    key=f"api:{key.id}:checkout-{self.tag}{i}",
                    source="api",
                    source_ref=f"api-key:{key.id}",
                )
                self.result.api_issued += 1

    def campaign_events(self) -> None:
        with self.db.write() as s:
            kids = campaigns.create(
                s,
                CampaignIn(
                    name=self.name("Kid's Club welcome"),
                    event="kids_club_joined",
                    subject="Welcome to the Kid's Club, {{ client.first_name }}!",
                    body_text="Your family discount: "
                    f'{{{{ client.promocode("{self.name(KIDS)}") }}}}\n',
                ),
            )
            follow = campaigns.create(
                s,
                CampaignIn(
                    name=self.name("Order follow-up"),
                    event="order_placed",
                    subject="Thanks for your order",
                    body_text=f"{{% set code = client.last_promocode('{self.name(WELCOME)}') %}}"
                    "Thanks for shopping with us!"
                    "{% if code %} Your welcome code {{ code }} still works.{% endif %}\n",
                ),
            )
            campaigns.create(
                s,
                CampaignIn(
                    name=self.name("Birthday surprise"),
                    event="birthday",
                    subject="Happy birthday, {{ client.first_name }}!",
                    body_text=f"A present: {{{{ client.promocode('{self.name(SUMMER)}') }}}}\n",
                    active=False,
                ),
            )
            self.result.campaigns = {
                "Kid's Club welcome": kids.id,
                "Order follow-up": follow.id,
            }
            fired = [
                ("kids_club_joined", c) for c in self._refs(s, self.n(400), kids_only=True)
            ] + [("order_placed", c) for c in self._refs(s, self.n(300))]
            for event, ref in fired:
                customer = customers.get(s, ref.external_id)
                campaigns.handle_event(
                    s, customer, event, event_id=f"demo{self.tag}-{event}-{ref.external_id}"
                )
                self.result.events += 1

    def redemptions(self) -> None:
        with self.db.write() as s:
            order = 0
            for base, share in ((WELCOME, 0.22), (FLASH, 0.35), (KIDS, 0.3)):
                issued = service.issued(s, self.result.groups[base])
                for code, ref in self.rng.sample(issued, round(len(issued) * share)):
                    order += 1
                    redemption.redeem(s, code, customer=ref, order_id=f"ORD{self.tag}-{order:06d}")
                    self.result.redemptions += 1
            # Someone brought a summer flyer to the till: a code nobody had been sent.
            stray = service.an_available_code(s, self.result.groups[SUMMER])
            if stray is not None:
                redemption.redeem(s, stray, order_id=f"POS{self.tag}-000001")
                self.result.redemptions += 1

    def later_mailings(self) -> None:
        self._mailing(
            "Welcome reminder",
            "Welcome code not redeemed",
            "Your 10% are still waiting",
            f"{{% set code = client.last_promocode('{self.name(WELCOME)}') %}}"
            "Hi {{ client.first_name }}, your welcome code {{ code }} is still valid.\n",
            send=True,
        )
        with self.db.write() as s:
            segment = segments.get(s, self.result.segments["Gold and silver members"])
            needed = segments.count(s, segments.tree_of(segment))
            shipping = self.result.groups[SHIPPING]
            left = self.n(40, 3)
            self._upload(s, shipping, self._codes("SHIP", needed + left), "free-shipping.txt")
        self._mailing(
            "Free shipping for members",
            "Gold and silver members",
            "Free shipping, {{ client.first_name }}",
            "As a {{ client.attributes.tier }} member you ship for free: "
            f"{{{{ client.promocode('{self.name(SHIPPING)}') }}}}\n",
            send=True,
        )
        self._mailing(
            "Summer sale in your city",
            "Berlin and Hamburg",
            "Summer sale in {{ client.attributes.city }}",
            "Hi {{ client.first_name }}, 20% off all summer: "
            f"{{{{ client.promocode('{self.name(SUMMER)}') }}}}\n",
            send=True,
        )
        self._mailing(
            "Autumn newsletter",
            "Never received a code",
            "Autumn is here",
            f"Something for you: {{{{ client.promocode('{self.name(SUMMER)}') }}}}\n",
            send=False,
        )

    def stock_alerts(self) -> None:
        with self.db.write() as s:
            alerts.scan(s)


def build(
    db: Database,
    settings: Settings | None = None,
    *,
    scale: float = 1.0,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Fill ``db`` with the demo; ``scale`` shrinks every amount (tests). Refuses a
    database that already holds data unless ``force``."""
    return _Builder(
        db, settings or Settings(database_url=db.url), scale, progress or (lambda _: None), force
    ).run()
