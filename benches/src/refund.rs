//! The refund of the args benchmarks (`benches/args.rs`, and `laissez-amqp`'s throughput
//! bench): one tool, its constraints and a body that meets them, in one place so that both
//! measure the same call.

/// The refund tool.
pub const TOOL: &str = "billing.refund";

/// Five constraints, as a refund tool would be granted: the amount, its currency, the order,
/// where the receipt goes, and every line item (SKU, quantity, reason code). `"*"` admits the
/// body's other members (customer, notes, metadata) as they are.
pub const ARGS: &str = r#"{
    "amount": {"range": [1, 50000]},
    "currency": {"one_of": ["EUR", "GBP", "USD"]},
    "order_id": {"prefix": "ord-"},
    "receipt_path": {"subpath": "/refunds/acme"},
    "items": {"each": {"object": {
        "sku": {"prefix": "SKU-"},
        "qty": {"range": [1, 100]},
        "reason": {"one_of": ["damaged", "late", "not_as_described", "wrong_item"]},
        "*": "any"
    }}, "max_items": 20},
    "*": "any"
}"#;

/// A refund as an agent would send it: about 1 KB, nested items, every constraint holding.
pub const BODY: &str = r#"{
  "order_id": "ord-2026-11-0042817",
  "amount": 12450,
  "currency": "EUR",
  "receipt_path": "/refunds/acme/2026/11/ord-2026-11-0042817/receipt.pdf",
  "customer": {"id": "cus_8f2a61c0", "email": "alice@example.com", "tier": "gold", "since": "2019-03-14"},
  "items": [
    {"sku": "SKU-4471-BLK-M", "name": "Merino crew neck, black, M", "qty": 2, "unit_price": 3900, "reason": "damaged"},
    {"sku": "SKU-1180-NAV-L", "name": "Oxford shirt, navy, L", "qty": 1, "unit_price": 2450, "reason": "wrong_item"},
    {"sku": "SKU-9002-GRY-32", "name": "Chino trousers, grey, 32", "qty": 1, "unit_price": 2200, "reason": "late"},
    {"sku": "SKU-3310-WHT-OS", "name": "Cotton socks, white, 3-pack", "qty": 1, "unit_price": 0, "reason": "late"}
  ],
  "notes": "Customer reported two sweaters arrived with torn seams; shirt was the wrong size. Photos attached to ticket 88123.",
  "metadata": {"ticket": 88123, "channel": "email", "agent_run": "run_01JD4K7Q2W", "locale": "de-DE", "retries": 0, "escalated": false}
}"#;
