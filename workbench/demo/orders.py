"""Orders in the simulated shop: placement, stock, payment, invoicing, shipping,
returns and late corrections. See :mod:`workbench.demo.world` for the rest."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .world import AGENTS, CARRIERS, DAY, TIERS, Customer, Item, Order, ShopBase, money

if TYPE_CHECKING:
    from .simulation import Flow, Simulation

__all__ = ["Shop", "start"]


class Shop(ShopBase):
    """The whole shop: the routine flows of :class:`ShopBase` plus the order flows."""

    def order_flow(self, customer: Customer) -> Flow:
        sim, rng = self.sim, self.rng
        chosen = rng.sample(self.active, min(len(self.active), rng.choice((1, 1, 1, 2, 2, 3, 4))))
        lines = {sku: rng.choice((1, 1, 1, 2, 3)) for sku in chosen}
        subtotal = money(sum(self.items[sku].price * qty for sku, qty in lines.items()))
        shipping = 0.0 if subtotal >= 50 else 4.95
        corr, order_id = sim.uuid(), self.next_id("ord")
        placed = self.emit(
            corr,
            order_id,
            "OrderPlaced",
            customer.actor,
            customer_id=customer.id,
            status="placed",
            currency="EUR",
            channel=self.pick(("web", "web", "mobile", "app")),
            lines={
                sku: {"name": self.items[sku].name, "qty": qty, "unit_price": self.items[sku].price}
                for sku, qty in lines.items()
            },
            subtotal=subtotal,
            shipping_fee=shipping,
            discount=0.0,
            total=money(subtotal + shipping),
            ship_to={"city": customer.address["city"], "country": customer.address["country"]},
        )
        order = Order(order_id, customer, corr, placed, sim.now, lines, money(subtotal + shipping))
        customer.last_order = order
        self.orders_today += 1
        yield sim.minutes(0.05, 0.5)

        reserved: list[str] = []
        for sku, qty in lines.items():
            item = self.items[sku]
            if item.available < qty:
                self.stock_event(
                    corr,
                    item,
                    "StockReservationFailed",
                    "svc:inventory",
                    placed,
                    order_id=order_id,
                    quantity=qty,
                )
                self.release(order, reserved, placed)
                self.cancel(order, "out_of_stock", "svc:checkout", placed)
                sim.spawn(self.restock_later(item), sim.hours(2, 20))
                return
            item.reserved += qty
            reserved.append(sku)
            move = {"order_id": order_id, "quantity": qty}
            if item.available > 2 and (self.chance(0.006) or not sim.stats["retries"]):
                # A cycle count lands between this reservation's read and its write.
                loaded = sim.versions[sku]
                item.on_hand += 1
                self.emit(
                    sim.uuid(),
                    sku,
                    "StockAdjusted",
                    "user:frank",
                    **item.stock(),
                    last_adjustment={"delta": 1, "reason": "cycle_count"},
                )
                sim.emit_contended(
                    sku,
                    "InventoryItem",
                    "StockReserved",
                    {**item.stock(), "last_movement": move},
                    loaded_version=loaded,
                    actor="svc:inventory",
                    correlation_id=corr,
                    causation_id=placed,
                )
            else:
                self.stock_event(corr, item, "StockReserved", "svc:inventory", placed, **move)
        yield sim.minutes(0.5, 12)

        if self.chance(0.07):
            discount = money(subtotal * 0.1)
            order.total = money(order.total - discount)
            coupon = {
                "coupon": self.pick(("SPRING10", "WELCOME10", "LOYAL10")),
                "discount": discount,
                "total": order.total,
            }
            if self.chance(0.25):
                # Support adds a note while the customer's coupon request is in flight.
                loaded, agent = sim.versions[order_id], self.pick(AGENTS)
                self.emit(
                    sim.uuid(),
                    order_id,
                    "OrderNoteAdded",
                    agent,
                    note={"by": agent, "text": "Customer asked about delivery date"},
                )
                sim.emit_contended(
                    order_id,
                    "Order",
                    "CouponApplied",
                    coupon,
                    loaded_version=loaded,
                    actor=customer.actor,
                    correlation_id=corr,
                    causation_id=placed,
                )
            else:
                self.emit(corr, order_id, "CouponApplied", customer.actor, placed, **coupon)
            yield sim.minutes(0.5, 5)

        authorized = ""
        for attempt in (1, 2, 3):
            order.payment = self.next_id("pay")
            payment = {
                "order_id": order_id,
                "amount": order.total,
                "currency": "EUR",
                "method": self.pick(("card", "card", "card", "paypal", "paypal", "invoice")),
                "attempt": attempt,
            }
            self.payments_today += 1
            if attempt == 3 or not self.chance(0.05):
                authorized = self.emit(
                    corr,
                    order.payment,
                    "PaymentAuthorized",
                    "svc:payments",
                    placed,
                    **payment,
                    status="authorized",
                    psp_reference=f"psp_{rng.getrandbits(48):012x}",
                )
                break
            reason = self.pick(("insufficient_funds", "card_expired", "3ds_timeout"))
            failed = self.emit(
                corr,
                order.payment,
                "PaymentFailed",
                "svc:payments",
                placed,
                **payment,
                status="failed",
                failure_reason=reason,
            )
            if not self.chance(0.6):
                self.release(order, reserved, failed)
                self.cancel(order, "payment_failed", "svc:checkout", failed)
                return
            yield sim.minutes(1, 30)  # the customer tries another way to pay
        confirmed = self.emit(
            corr,
            order_id,
            "OrderConfirmed",
            "svc:checkout",
            authorized,
            status="confirmed",
            payment_id=order.payment,
        )
        order.status, order.invoice = "confirmed", self.next_id("inv")
        self.emit(
            corr,
            order.invoice,
            "InvoiceIssued",
            "svc:billing",
            confirmed,
            order_id=order_id,
            customer_id=customer.id,
            number=f"INV-{sim.time():%Y}-{order.invoice[-6:]}",
            amount=order.total,
            tax=money(order.total - order.total / 1.19),
            currency="EUR",
            status="issued",
            due_date=self.day(14 * DAY),
        )

        if self.chance(0.02):
            yield sim.hours(0.2, 6)
            cancelled = self.cancel(order, "customer_request", customer.actor, confirmed)
            self.emit(
                corr, order.payment, "PaymentVoided", "svc:payments", cancelled, status="voided"
            )
            self.emit(
                corr,
                order.invoice,
                "InvoiceCancelled",
                "svc:billing",
                cancelled,
                status="cancelled",
            )
            self.release(order, reserved, cancelled)
            return
        yield from self.fulfil(order, confirmed)

    def release(self, order: Order, reserved: list[str], cause: str) -> None:
        for sku in reserved:
            item = self.items[sku]
            item.reserved -= order.lines[sku]
            self.stock_event(
                order.corr,
                item,
                "StockReleased",
                "svc:inventory",
                cause,
                order_id=order.id,
                quantity=order.lines[sku],
            )

    def cancel(self, order: Order, reason: str, actor: str, cause: str) -> str:
        order.status = "cancelled"
        return self.emit(
            order.corr,
            order.id,
            "OrderCancelled",
            actor,
            cause,
            status="cancelled",
            cancellation_reason=reason,
        )

    def restock_later(self, item: Item) -> Flow:
        yield 0.0
        if item.active:
            self.restock(item)

    def fulfil(self, order: Order, confirmed: str) -> Flow:
        sim, corr = self.sim, order.corr
        yield sim.hours(1, 20)
        order.shipment = shipment = self.next_id("shp")
        carrier, prefix = self.rng.choice(CARRIERS)
        created = self.emit(
            corr,
            shipment,
            "ShipmentCreated",
            "svc:shipping",
            confirmed,
            order_id=order.id,
            carrier=carrier,
            status="created",
            ship_to=dict(order.customer.address),
            parcels=1 if len(order.lines) < 3 else 2,
        )
        yield sim.hours(0.5, 6)
        picked = self.emit(
            corr,
            shipment,
            "ShipmentPicked",
            "user:frank",
            created,
            status="picked",
            picked_by="user:frank",
        )
        for sku, qty in order.lines.items():
            item = self.items[sku]
            item.on_hand -= qty
            item.reserved -= qty
            self.stock_event(
                corr,
                item,
                "StockShipped",
                "svc:inventory",
                picked,
                order_id=order.id,
                quantity=-qty,
            )
        yield sim.minutes(10, 120)
        tracking = f"{prefix}{self.rng.getrandbits(36):011d}"
        dispatched = self.emit(
            corr,
            shipment,
            "ShipmentDispatched",
            "svc:shipping",
            picked,
            status="in_transit",
            tracking_number=tracking,
        )
        dispatched_at = sim.now
        self.emit(
            corr,
            order.id,
            "OrderShipped",
            "svc:checkout",
            dispatched,
            status="shipped",
            shipment_id=shipment,
            tracking_number=tracking,
        )
        order.status = "shipped"
        # The payment provider's capture webhook: usually prompt, sometimes hours late.
        late = self.chance(0.15)
        yield sim.hours(1, 8) if late else sim.minutes(1, 20)
        captured = self.emit(
            corr,
            order.payment,
            "PaymentCaptured",
            "svc:psp-webhook",
            dispatched,
            dispatched_at + sim.minutes(0.5, 3) if late else None,
            status="captured",
            captured_amount=order.total,
        )
        self.emit(
            corr,
            order.invoice,
            "InvoicePaid",
            "svc:billing",
            captured,
            status="paid",
            paid_on=self.day(),
        )

        yield sim.days(0.8, 3)
        if self.chance(0.08):
            self.emit(
                corr,
                shipment,
                "ShipmentDelayed",
                "svc:carrier-webhook",
                dispatched,
                status="delayed",
                eta=self.day(2 * DAY),
                delay_reason=self.pick(("weather", "hub backlog", "address query")),
            )
            yield sim.days(1, 3)
        delivered = self.emit(
            corr,
            shipment,
            "ShipmentDelivered",
            "svc:carrier-webhook",
            dispatched,
            status="delivered",
            delivered_to=self.pick(("recipient", "neighbour", "locker")),
        )
        self.emit(corr, order.id, "OrderDelivered", "svc:checkout", delivered, status="delivered")
        order.status = "delivered"
        order.delivered_at = sim.now
        customer = order.customer
        customer.delivered += 1
        if customer.delivered in TIERS:
            self.emit(
                corr,
                customer.id,
                "CustomerTierChanged",
                "svc:loyalty",
                delivered,
                tier=TIERS[customer.delivered],
                delivered_orders=customer.delivered,
            )

        if not self.correction_planned:  # the first comes soon, so small stores have one
            self.correction_planned = True
            sim.spawn(self.late_correction(order), sim.days(1, 3))
        elif self.chance(0.12 if _near_quarter_end(sim.time(order.placed_at)) else 0.04):
            # Finance reviews orders in the weeks after they close, and more
            # closely at a quarter's end, so corrections land well after the
            # business date they fix: restatements of a quarter have material.
            sim.spawn(self.late_correction(order), sim.days(4, 40))
        if self.chance(0.05):
            yield sim.days(1, 12)
            yield from self.return_flow(order)

    def return_flow(self, order: Order) -> Flow:
        sim, corr = self.sim, order.corr
        requested = self.emit(
            corr,
            order.id,
            "ReturnRequested",
            order.customer.actor,
            status="return_requested",
            return_reason=self.pick(("damaged", "wrong size", "changed mind")),
        )
        order.status = "return_requested"
        yield sim.days(2, 6)
        received = self.emit(
            corr, order.shipment, "ShipmentReturned", "user:frank", requested, status="returned"
        )
        for sku, qty in order.lines.items():
            item = self.items[sku]
            item.on_hand += qty
            self.stock_event(
                corr, item, "StockReturned", "user:frank", received, order_id=order.id, quantity=qty
            )
        refunded = self.emit(
            corr,
            order.payment,
            "PaymentRefunded",
            "svc:payments",
            received,
            status="refunded",
            refunded_amount=order.total,
        )
        self.emit(
            corr,
            order.id,
            "OrderReturned",
            "svc:checkout",
            refunded,
            status="returned",
            refund_amount=order.total,
        )
        self.emit(
            corr,
            order.invoice,
            "CreditNoteIssued",
            "svc:billing",
            refunded,
            status="credited",
            credited_amount=order.total,
        )
        order.status = "returned"

    def late_correction(self, order: Order) -> Flow:
        """Finance finds a wrong total weeks later; the correction is dated back."""
        yield 0.0
        if order.status != "delivered":
            self.correction_planned = False  # try again with another order
            return
        sim, corr, previous = self.sim, self.sim.uuid(), order.total
        change = -money(self.rng.uniform(0.5, max(0.6, min(12.0, previous * 0.2))))
        order.total = money(previous + change)
        # Dated back to the delivery, the last fact of the order: a business-time
        # replay then shows the corrected total from that day on (dated to the
        # placement, the invoice and payment events after it would restate the
        # old amount in occurred_at order).
        effective = order.delivered_at + 1.0
        reason = self.pick(("wrong VAT rate", "shipping fee charged twice", "coupon not applied"))
        fixed = self.emit(
            corr,
            order.id,
            "OrderTotalCorrected",
            "user:grace",
            order.placed,
            effective,
            total=order.total,
            previous_total=previous,
            correction=change,
            correction_reason=reason,
        )
        sim.stats["corrections"] += 1
        self.emit(
            corr,
            order.invoice,
            "InvoiceCorrected",
            "user:grace",
            fixed,
            effective,
            amount=order.total,
            previous_amount=previous,
            status="corrected",
        )
        yield sim.minutes(5, 90)
        self.emit(
            corr,
            order.payment,
            "PaymentRefunded",
            "svc:payments",
            fixed,
            status="partially_refunded",
            refunded_amount=-change,
        )


def _near_quarter_end(day: datetime) -> bool:
    return day.month in (3, 6, 9, 12) and day.day >= 10


def start(sim: Simulation) -> None:
    """Open the shop: the catalogue first, then every recurring flow."""
    sim.spawn(Shop(sim).bootstrap())
