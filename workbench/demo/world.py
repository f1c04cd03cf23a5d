"""The shop simulated by :mod:`workbench.demo`: its people, products and routine flows.

Every flow is a generator over business time: it emits events and yields how
many seconds to wait before its next step. All randomness comes from
``sim.rng``, so the seed fixes everything. The aggregate type of an event
follows from its aggregate id's prefix (``ord-000042`` is an ``Order``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .simulation import Flow, Simulation

__all__ = ["AGGREGATE_TYPES", "EVENT_TYPES", "Customer", "Item", "Order", "ShopBase", "money"]

AGGREGATE_TYPES = {
    "cust": "Customer",
    "sku": "InventoryItem",
    "ord": "Order",
    "pay": "Payment",
    "inv": "Invoice",
    "shp": "Shipment",
    "tkt": "SupportTicket",
}
EVENT_TYPES = (
    "CustomerRegistered", "CustomerAddressChanged", "CustomerEmailChanged",
    "MarketingConsentChanged", "CustomerTierChanged", "CustomerDeactivated",
    "InventoryItemCreated", "StockReserved", "StockReservationFailed", "StockReleased",
    "StockShipped", "StockReturned", "StockReceived", "StockAdjusted", "PriceChanged",
    "ItemDiscontinued",
    "OrderPlaced", "CouponApplied", "OrderNoteAdded", "OrderConfirmed", "OrderShipped",
    "OrderDelivered", "OrderCancelled", "ReturnRequested", "OrderReturned", "OrderTotalCorrected",
    "PaymentAuthorized", "PaymentFailed", "PaymentCaptured", "PaymentVoided", "PaymentRefunded",
    "InvoiceIssued", "InvoicePaid", "InvoiceCancelled", "InvoiceCorrected", "CreditNoteIssued",
    "ShipmentCreated", "ShipmentPicked", "ShipmentDispatched", "ShipmentDelayed",
    "ShipmentDelivered", "ShipmentReturned",
    "TicketOpened", "TicketAssigned", "TicketCommented", "TicketEscalated", "TicketResolved",
    "TicketReopened",
    # system events, without aggregate
    "SystemStarted", "CatalogImported", "ServiceDeployed", "FeatureFlagChanged",
    "NightlyReconciliationCompleted", "BackupCompleted",
)  # fmt: skip

FIRST = (
    "Ada", "Ben", "Chloe", "Dmitri", "Elif", "Farah", "Georg", "Hana", "Ivan", "Jonas", "Kira",
    "Luca", "Mina", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Viktor",
)  # fmt: skip
LAST = (
    "Andersen", "Brandt", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat", "Jensen",
    "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Rossi", "Schmidt", "Vogel",
)  # fmt: skip
CITIES = (
    ("Berlin", "DE", "10115"), ("Hamburg", "DE", "20095"), ("Munich", "DE", "80331"),
    ("Vienna", "AT", "1010"), ("Zurich", "CH", "8001"), ("Amsterdam", "NL", "1012"),
    ("Paris", "FR", "75001"), ("Lyon", "FR", "69001"), ("Madrid", "ES", "28001"),
    ("Milan", "IT", "20121"), ("Copenhagen", "DK", "1050"), ("Prague", "CZ", "11000"),
)  # fmt: skip
STREETS = (
    "Lindenstrasse", "Hauptstrasse", "Rue de la Paix", "Kerkstraat", "Via Roma", "Calle Mayor",
    "Market Street", "Bahnhofstrasse", "Parkweg", "Ringvej",
)  # fmt: skip
CATALOG = {
    "books": (("Field Guide to", "Notes on", "A Short History of"),
              ("Birds", "Rivers", "Typography", "Bread", "Chess"), (9.0, 45.0)),
    "kitchen": (("Cast Iron", "Enamel", "Bamboo", "Copper"),
                ("Skillet", "Kettle", "Cutting Board", "Teapot"), (12.0, 120.0)),
    "audio": (("Wireless", "Studio", "Travel", "Retro"),
              ("Headphones", "Speaker", "Turntable", "Earbuds"), (25.0, 320.0)),
    "garden": (("Folding", "Stainless", "Solar", "Cedar"),
               ("Trowel", "Lantern", "Planter", "Hose Reel"), (8.0, 90.0)),
    "toys": (("Wooden", "Magnetic", "Glow", "Classic"),
             ("Train Set", "Puzzle", "Kite", "Building Blocks"), (10.0, 70.0)),
    "office": (("Ergonomic", "Recycled", "Leather", "Minimal"),
               ("Notebook", "Desk Lamp", "Pen Set", "Monitor Stand"), (6.0, 150.0)),
}  # fmt: skip
CARRIERS = (("DHL", "JD"), ("UPS", "1Z"), ("GLS", "GL"), ("DPD", "DP"), ("PostNL", "3S"))
SERVICES = ("checkout", "payments", "inventory", "shipping", "billing", "support-bot")
AGENTS = ("user:erin", "user:sam")
AGENT_COMMENTS = (
    "I have asked the carrier and will report back.", "A replacement is on its way.",
    "Please use the return label from your account page.", "Refund approved.",
)  # fmt: skip
CUSTOMER_COMMENTS = (
    "Could you check where my parcel is?", "The item arrived damaged, photos attached.",
    "Thanks, that solved it.", "Still nothing, any news?",
)  # fmt: skip
SUBJECTS = {
    "placed": "Where is my order?", "confirmed": "Where is my order?",
    "shipped": "Parcel not arrived", "delivered": "Item damaged",
    "cancelled": "Why was my order cancelled?",
}  # fmt: skip
TIERS = {3: "silver", 10: "gold"}  # delivered orders -> loyalty tier
DAY = 86400.0


@dataclass(slots=True)
class Customer:
    id: str
    address: dict[str, str]
    marketing: bool
    active: bool = True
    delivered: int = 0
    last_order: Order | None = None

    @property
    def actor(self) -> str:
        return f"customer:{self.id}"


@dataclass(slots=True)
class Item:
    sku: str
    name: str
    price: float
    on_hand: int
    reserved: int = 0
    active: bool = True

    def stock(self) -> dict[str, int]:
        available = self.on_hand - self.reserved
        return {"on_hand": self.on_hand, "reserved": self.reserved, "available": available}

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(slots=True)
class Order:
    id: str
    customer: Customer
    corr: str  # the correlation id of the whole order flow
    placed: str  # the OrderPlaced event id
    placed_at: float
    lines: dict[str, int]
    total: float
    status: str = "placed"
    payment: str = ""
    invoice: str = ""
    shipment: str = ""
    delivered_at: float = 0.0


def money(value: float) -> float:
    return round(value + 1e-9, 2)


class ShopBase:
    """The world's state, kept beside the log so that payloads stay consistent, and the
    flows that do not involve orders."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.rng = sim.rng
        self.customers: list[Customer] = []
        self.items: dict[str, Item] = {}
        self.active: list[str] = []
        self.counters: dict[str, int] = {}
        self.orders_today = 0
        self.payments_today = 0
        self.correction_planned = False

    # -- helpers ---------------------------------------------------------------

    def emit(
        self,
        corr: str,
        aggregate: str | None,
        event_type: str,
        actor: str,
        cause: str | None = None,
        at: float | None = None,
        /,
        **data: Any,
    ) -> str:
        """Emit one event; its payload is the keyword arguments."""
        if aggregate is None:
            self.sim.stats["system"] += 1
            kind = None
        else:
            kind = AGGREGATE_TYPES[aggregate.split("-", 1)[0]]
        return self.sim.emit(
            aggregate,
            kind,
            event_type,
            data,
            actor=actor,
            correlation_id=corr,
            causation_id=cause,
            occurred=at,
        )

    def next_id(self, prefix: str, width: int = 6) -> str:
        number = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = number
        return f"{prefix}-{number:0{width}d}"

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, options: tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def day(self, offset: float = 0.0) -> str:
        return (self.sim.time() + timedelta(seconds=offset)).date().isoformat()

    def address(self) -> dict[str, str]:
        city, country, zip_code = self.rng.choice(CITIES)
        street = f"{self.pick(STREETS)} {self.rng.randint(1, 180)}"
        return {"street": street, "zip": zip_code, "city": city, "country": country}

    def stock_event(
        self, corr: str, item: Item, event_type: str, actor: str, cause: str | None, **move: Any
    ) -> str:
        # Every movement names both references, one of them null, so the default
        # merge-patch reducer replaces the last movement instead of blending two.
        movement = {"order_id": None, "purchase_order": None, **move}
        return self.emit(
            corr, item.sku, event_type, actor, cause, **item.stock(), last_movement=movement
        )

    # -- catalogue and customers ------------------------------------------------

    def new_item(self, corr: str, cause: str | None) -> None:
        category = self.rng.choice(sorted(CATALOG))
        prefixes, nouns, (low, high) = CATALOG[category]
        name = f"{self.pick(prefixes)} {self.pick(nouns)}"
        item = Item(
            self.next_id("sku", 4),
            name,
            money(self.rng.uniform(low, high)),
            self.rng.randint(20, 150),
        )
        self.items[item.sku] = item
        self.active.append(item.sku)
        self.emit(
            corr,
            item.sku,
            "InventoryItemCreated",
            "svc:catalog",
            cause,
            sku=item.sku,
            name=name,
            category=category,
            price=item.price,
            currency="EUR",
            warehouse=self.pick(("BER-1", "HAM-2")),
            status="active",
            **item.stock(),
        )

    def restock(self, item: Item, cause: str | None = None) -> None:
        quantity = self.rng.randint(40, 140)
        item.on_hand += quantity
        self.stock_event(
            self.sim.uuid(),
            item,
            "StockReceived",
            "svc:warehouse",
            cause,
            purchase_order=self.next_id("PO", 5),
            quantity=quantity,
        )

    def register(self) -> Customer:
        customer = Customer(self.next_id("cust", 5), self.address(), self.chance(0.4))
        self.customers.append(customer)
        first, last = self.pick(FIRST), self.pick(LAST)
        email = f"{first}.{last}.{customer.id[-5:]}@example.com".lower()
        self.emit(
            self.sim.uuid(),
            customer.id,
            "CustomerRegistered",
            customer.actor,
            name=f"{first} {last}",
            email=email,
            tier="standard",
            status="active",
            address=customer.address,
            marketing_consent=customer.marketing,
        )
        return customer

    def pick_customer(self) -> Customer | None:
        for _ in range(8):
            customer = self.rng.choice(self.customers)
            if customer.active:
                return customer
        return None

    def profile_change(self, customer: Customer) -> None:
        corr, roll, who = self.sim.uuid(), self.rng.random(), customer.actor
        if roll < 0.45:
            # A move within the city patches the street only; a move elsewhere, everything.
            new = self.address()
            patch = {"street": new["street"]} if self.chance(0.5) else new
            customer.address = {**customer.address, **patch}
            self.emit(corr, customer.id, "CustomerAddressChanged", who, address=patch)
        elif roll < 0.7:
            email = f"{customer.id}.{self.rng.randint(10, 99)}@example.org"
            self.emit(corr, customer.id, "CustomerEmailChanged", who, email=email)
        elif roll < 0.95:
            customer.marketing = not customer.marketing
            self.emit(
                corr,
                customer.id,
                "MarketingConsentChanged",
                who,
                marketing_consent=customer.marketing,
            )
        else:
            customer.active = False
            self.emit(
                corr,
                customer.id,
                "CustomerDeactivated",
                self.pick(AGENTS),
                status="deactivated",
                deactivation_reason="customer_request",
            )

    # -- recurring flows ---------------------------------------------------------

    def bootstrap(self) -> Flow:
        corr = self.sim.uuid()
        started = self.emit(
            corr,
            None,
            "SystemStarted",
            "svc:deployer",
            service="shop",
            version="1.0.0",
            environment="production",
        )
        size = max(12, min(120, self.sim.limit // 250))
        yield 30.0
        imported = self.emit(
            corr, None, "CatalogImported", "svc:catalog", started, items=size, source="erp"
        )
        for _ in range(size):
            yield self.rng.uniform(0.5, 3.0)
            self.new_item(corr, imported)
        for flow in (self.arrivals(), self.nightly(), self.operations(), self.merchandising()):
            self.sim.spawn(flow, 60.0)

    def arrivals(self) -> Flow:
        while True:
            gap = self.rng.expovariate(1.0 / self.sim.arrival_gap)
            hour = int((self.sim.now + gap) // 3600) % 24
            if hour < 6 and self.chance(0.8):  # nights are quiet
                gap += (6 - hour) * 3600 + self.rng.uniform(0, 3 * 3600)
            yield gap
            roll = self.rng.random()
            customer = self.pick_customer() if self.customers else None
            if customer is None or roll < 0.25:
                customer = self.register()
                if self.chance(0.6):
                    self.sim.spawn(self.order_flow(customer), self.sim.minutes(2, 40))
            elif roll < 0.88:
                self.sim.spawn(self.order_flow(customer))
            elif roll < 0.94:
                self.profile_change(customer)
            else:
                self.sim.spawn(self.support_flow(customer))

    def nightly(self) -> Flow:
        night = 0
        while True:
            yield DAY - (self.sim.now % DAY) + 2 * 3600 + self.rng.uniform(0, 600)
            night += 1
            corr = self.sim.uuid()
            self.emit(
                corr,
                None,
                "NightlyReconciliationCompleted",
                "svc:scheduler",
                business_date=self.day(-DAY),
                orders_checked=self.orders_today,
                payments_checked=self.payments_today,
                mismatches=1 if self.chance(0.03) else 0,
            )
            self.orders_today = self.payments_today = 0
            if night % 7 == 0:
                self.emit(
                    corr,
                    None,
                    "BackupCompleted",
                    "svc:scheduler",
                    size_mb=180 + night * 3,
                    target="s3://backups/shop",
                )
            yield 3.5 * 3600  # the warehouse restocks at dawn
            for sku in list(self.active):
                if self.items[sku].available < 12:
                    self.restock(self.items[sku])

    def operations(self) -> Flow:
        minor, patch = 0, 0
        while True:
            yield self.sim.days(3, 11)
            corr = self.sim.uuid()
            minor, patch = (minor + 1, 0) if self.chance(0.3) else (minor, patch + 1)
            self.emit(
                corr,
                None,
                "ServiceDeployed",
                "svc:deployer",
                service=self.pick(SERVICES),
                version=f"1.{minor}.{patch}",
                commit=f"{self.rng.getrandbits(28):07x}",
            )
            if self.chance(0.35):
                yield self.sim.minutes(5, 90)
                self.emit(
                    corr,
                    None,
                    "FeatureFlagChanged",
                    "user:alice",
                    flag=self.pick(("express-checkout", "new-search", "paypal")),
                    enabled=self.chance(0.6),
                )

    def merchandising(self) -> Flow:
        while True:
            yield self.sim.days(0.3, 2.5)
            item, corr = self.items[self.rng.choice(self.active)], self.sim.uuid()
            roll = self.rng.random()
            if roll < 0.7:
                previous, item.price = item.price, money(item.price * self.rng.uniform(0.8, 1.2))
                self.emit(
                    corr,
                    item.sku,
                    "PriceChanged",
                    "user:carol",
                    price=item.price,
                    previous_price=previous,
                )
            elif roll < 0.85 and item.available > 0:
                item.on_hand -= 1
                self.emit(
                    corr,
                    item.sku,
                    "StockAdjusted",
                    "user:frank",
                    **item.stock(),
                    last_adjustment={"delta": -1, "reason": "damaged"},
                )
            elif len(self.active) > 8 and item.reserved == 0:
                item.active = False
                self.active.remove(item.sku)
                retired = self.emit(
                    corr, item.sku, "ItemDiscontinued", "user:carol", status="discontinued"
                )
                self.new_item(corr, retired)

    # -- support -------------------------------------------------------------------

    def support_flow(self, customer: Customer) -> Flow:
        sim, corr, order = self.sim, self.sim.uuid(), customer.last_order
        ticket = self.next_id("tkt", 5)
        about: dict[str, Any] = {"subject": "Question about my account"}
        if order is not None:
            subject = SUBJECTS.get(order.status, "Question about my order")
            about = {"order_id": order.id, "subject": subject}
        opened = self.emit(
            corr,
            ticket,
            "TicketOpened",
            customer.actor,
            order.placed if order else None,
            customer_id=customer.id,
            priority="normal",
            status="open",
            comments=0,
            channel=self.pick(("email", "chat", "phone")),
            **about,
        )
        yield sim.minutes(5, 240)
        agent = self.pick(AGENTS)
        assigned = self.emit(
            corr,
            ticket,
            "TicketAssigned",
            "svc:support-bot",
            opened,
            assignee=agent,
            status="assigned",
        )
        for number in range(1, self.rng.randint(2, 4)):
            yield sim.hours(0.2, 20)
            who = agent if number % 2 else customer.actor
            self.emit(
                corr,
                ticket,
                "TicketCommented",
                who,
                assigned,
                comments=number,
                last_comment={
                    "by": who,
                    "text": self.pick(AGENT_COMMENTS if who == agent else CUSTOMER_COMMENTS),
                },
            )
        if self.chance(0.15):
            self.emit(
                corr,
                ticket,
                "TicketEscalated",
                agent,
                assigned,
                priority="high",
                assignee="user:dave",
                escalated_by=agent,
            )
            agent = "user:dave"
            yield sim.hours(1, 24)
        resolution = self.pick(("answered", "refund issued", "replacement sent"))
        resolved = self.emit(
            corr,
            ticket,
            "TicketResolved",
            agent,
            assigned,
            status="resolved",
            resolution=resolution,
        )
        if self.chance(0.06):
            yield sim.days(1, 5)
            reopened = self.emit(
                corr, ticket, "TicketReopened", customer.actor, resolved, status="reopened"
            )
            yield sim.hours(1, 24)
            self.emit(
                corr,
                ticket,
                "TicketResolved",
                agent,
                reopened,
                status="resolved",
                resolution=resolution,
            )

    def order_flow(self, customer: Customer) -> Flow:
        """A customer's order from placement to delivery (see :mod:`.orders`)."""
        raise NotImplementedError
