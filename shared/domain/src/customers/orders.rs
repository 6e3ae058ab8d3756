//! Order events from the storefront (`POST /orders/events`, or the shop's event bus): what happened
//! to an order, read and checked, and folded into the order's state so that events arriving out of
//! order never move an order back (a `shipped` after `delivered` changes nothing).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Timestamp;
use crate::conversations::timestamp;
use crate::validate::{Fields, InputError, check_text, json_object};

/// At most this many events per call (DynamoDB's transaction and batch sizes are 25 and 100).
pub const ORDER_BATCH_MAX: usize = 25;
pub const ORDER_BODY_MAX_BYTES: usize = 256 * 1024;
/// At most this many items per order event.
pub const ORDER_ITEMS_MAX: usize = 100;
/// The largest order total or unit price accepted, in major units.
pub const ORDER_AMOUNT_MAX: i64 = 10_000_000;

const EVENT_FIELDS: &[&str] = &[
    "event_id",
    "type",
    "order_id",
    "customer_id",
    "at",
    "total",
    "currency",
    "items",
    "promised_delivery_at",
    "carrier",
];
const ITEM_FIELDS: &[&str] = &["sku", "category", "quantity", "unit_price"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventKind {
    Placed,
    Paid,
    Shipped,
    Delivered,
    Delayed,
    Cancelled,
    RefundRequested,
    RefundCompleted,
    Returned,
}

impl OrderEventKind {
    pub const ALL: [(&'static str, OrderEventKind); 9] = [
        ("placed", OrderEventKind::Placed),
        ("paid", OrderEventKind::Paid),
        ("shipped", OrderEventKind::Shipped),
        ("delivered", OrderEventKind::Delivered),
        ("delayed", OrderEventKind::Delayed),
        ("cancelled", OrderEventKind::Cancelled),
        ("refund_requested", OrderEventKind::RefundRequested),
        ("refund_completed", OrderEventKind::RefundCompleted),
        ("returned", OrderEventKind::Returned),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub sku: String,
    pub category: Option<String>,
    pub quantity: u32,
    /// Minor units (fen, cents).
    pub unit_price_minor: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_id: String,
    pub kind: OrderEventKind,
    pub order_id: String,
    pub customer_id: crate::ids::CustomerId,
    pub at: Timestamp,
    /// Minor units.
    pub total_minor: Option<i64>,
    pub currency: Option<String>,
    pub items: Vec<OrderItem>,
    pub promised_delivery_at: Option<Timestamp>,
    pub carrier: Option<String>,
}

/// Reads a `POST /orders/events` body, `{"events": [...]}` with 1 to 25 events. Every problem of
/// every event is reported at once (`events[2].type`); nothing is accepted from a batch with one.
pub fn parse_order_events(body: &[u8], now: Timestamp) -> Result<Vec<OrderEvent>, InputError> {
    let object = json_object(body, ORDER_BODY_MAX_BYTES)?;
    let mut f = Fields::new(&object, "", &["events"]);
    let list = match object.get("events") {
        Some(Value::Array(list)) if (1..=ORDER_BATCH_MAX).contains(&list.len()) => list.clone(),
        Some(Value::Array(_)) => {
            f.fail("events", "count", format!("must hold 1 to {ORDER_BATCH_MAX} events"));
            Vec::new()
        }
        None | Some(Value::Null) => {
            f.fail("events", "required", "is required");
            Vec::new()
        }
        Some(_) => {
            f.fail("events", "type", "must be a list of events");
            Vec::new()
        }
    };
    let mut errors = f.errors;
    let mut events = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let prefix = format!("events[{i}]");
        let Value::Object(o) = raw else {
            errors.push(crate::validate::FieldError::new(prefix, "type", "must be an object"));
            continue;
        };
        match event(o, &prefix, now) {
            Ok(e) => events.push(e),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        errors.push(crate::validate::FieldError::new("events", "unique", "names an event_id twice"));
    }
    if errors.is_empty() { Ok(events) } else { Err(InputError::Invalid(errors)) }
}

fn event(
    o: &serde_json::Map<String, Value>,
    prefix: &str,
    now: Timestamp,
) -> Result<OrderEvent, Vec<crate::validate::FieldError>> {
    let mut f = Fields::new(o, prefix, EVENT_FIELDS);
    let event_id = f.id("event_id", true);
    let kind = f.one_of("type", true, &OrderEventKind::ALL);
    let order_id = f.id("order_id", true);
    let customer_id = f.id("customer_id", true);
    let at = timestamp(&mut f, "at", true, now);
    let total_minor = f.amount("total", ORDER_AMOUNT_MAX);
    let currency = f.string("currency", false).and_then(|c| {
        let ok = c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
        if !ok {
            f.fail("currency", "currency", "must be an ISO 4217 code such as CNY");
        }
        ok.then(|| c.to_owned())
    });
    // A promise may lie ahead, by any amount; only its shape is checked.
    let promised_delivery_at = f.string("promised_delivery_at", false).and_then(|raw| match raw.parse() {
        Ok(t) => Some(t),
        Err(_) => {
            f.fail("promised_delivery_at", "timestamp", "must be an RFC 3339 time with a UTC offset");
            None
        }
    });
    let carrier = f.string("carrier", false).and_then(|raw| f.keep(check_text("carrier", raw, 64)).flatten());
    let mut items = Vec::new();
    match o.get("items") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.len() <= ORDER_ITEMS_MAX => {
            for (i, raw) in list.iter().enumerate() {
                let key = format!("items[{i}]");
                let Value::Object(io) = raw else {
                    f.fail(&key, "type", "must be an object");
                    continue;
                };
                let mut g = Fields::new(io, &f.path(&key), ITEM_FIELDS);
                let sku = g.id("sku", true);
                let category =
                    g.string("category", false).and_then(|raw| g.keep(check_text("category", raw, 64)).flatten());
                let quantity = g.integer_in("quantity", 1, 10_000);
                let unit_price_minor = g.amount("unit_price", ORDER_AMOUNT_MAX);
                match (sku, quantity) {
                    (Some(sku), Some(q)) if g.errors.is_empty() => {
                        items.push(OrderItem { sku, category, quantity: q as u32, unit_price_minor })
                    }
                    _ => f.errors.append(&mut g.errors),
                }
            }
        }
        Some(Value::Array(_)) => f.fail("items", "count", format!("must hold at most {ORDER_ITEMS_MAX} items")),
        Some(_) => f.fail("items", "type", "must be a list of items"),
    }
    match (event_id, kind, order_id, customer_id, at) {
        (Some(event_id), Some(kind), Some(order_id), Some(customer_id), Some(at)) if f.errors.is_empty() => {
            Ok(OrderEvent {
                event_id,
                kind,
                order_id,
                customer_id: customer_id.into(),
                at,
                total_minor,
                currency,
                items,
                promised_delivery_at,
                carrier,
            })
        }
        _ => Err(f.errors),
    }
}

/// Where an order is in its life. The rank only goes up: a late `shipped` after `delivered` or a
/// `paid` after `cancelled` leaves the order where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Paid,
    Shipped,
    Delivered,
    Returned,
    Cancelled,
}

impl OrderStatus {
    /// Delivered, returned or cancelled: nothing more is owed to the customer on delivery.
    pub fn is_closed(self) -> bool {
        self >= OrderStatus::Delivered
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    Requested,
    Completed,
}

/// One order as the events so far tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub order_id: String,
    pub status: OrderStatus,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_delivery_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delayed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// The promise a lateness check (or an apology) was queued for, so each promise gets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promise_checked: Option<Timestamp>,
}

impl OrderState {
    pub fn new(e: &OrderEvent) -> OrderState {
        let mut order = OrderState {
            order_id: e.order_id.clone(),
            status: OrderStatus::Placed,
            first_at: e.at,
            last_at: e.at,
            total_minor: None,
            currency: None,
            categories: Vec::new(),
            promised_delivery_at: None,
            delayed: false,
            refund: None,
            carrier: None,
            promise_checked: None,
        };
        order.apply(e);
        order
    }

    /// Folds one event in; the result does not depend on the order events arrive in (but for
    /// the latest total, promise and carrier, which follow the event with the latest `at`).
    pub fn apply(&mut self, e: &OrderEvent) {
        let newest = e.at >= self.last_at;
        let status = match e.kind {
            OrderEventKind::Placed => Some(OrderStatus::Placed),
            OrderEventKind::Paid => Some(OrderStatus::Paid),
            OrderEventKind::Shipped => Some(OrderStatus::Shipped),
            OrderEventKind::Delivered => Some(OrderStatus::Delivered),
            OrderEventKind::Returned => Some(OrderStatus::Returned),
            OrderEventKind::Cancelled => Some(OrderStatus::Cancelled),
            OrderEventKind::Delayed | OrderEventKind::RefundRequested | OrderEventKind::RefundCompleted => None,
        };
        if let Some(status) = status {
            self.status = self.status.max(status);
        }
        match e.kind {
            OrderEventKind::Delayed => self.delayed = true,
            OrderEventKind::RefundRequested if self.refund.is_none() => self.refund = Some(RefundState::Requested),
            OrderEventKind::RefundCompleted => self.refund = Some(RefundState::Completed),
            _ => {}
        }
        if e.total_minor.is_some() && (newest || self.total_minor.is_none()) {
            self.total_minor = e.total_minor;
            self.currency = e.currency.clone().or(self.currency.take());
        }
        if e.promised_delivery_at.is_some() && (newest || self.promised_delivery_at.is_none()) {
            self.promised_delivery_at = e.promised_delivery_at;
        }
        if e.carrier.is_some() && (newest || self.carrier.is_none()) {
            self.carrier = e.carrier.clone();
        }
        for category in e.items.iter().filter_map(|i| i.category.as_ref()) {
            if !self.categories.contains(category) {
                self.categories.push(category.clone());
            }
        }
        self.first_at = self.first_at.min(e.at);
        self.last_at = self.last_at.max(e.at);
    }

    /// How late the order is at `now`: not delivered (nor closed otherwise) and past its promise.
    pub fn late_by(&self, now: Timestamp) -> Option<jiff::SignedDuration> {
        let promised = self.promised_delivery_at?;
        (!self.status.is_closed() && now > promised).then(|| now.duration_since(promised))
    }

    pub fn refund_open(&self) -> bool {
        self.refund == Some(RefundState::Requested)
    }
}
