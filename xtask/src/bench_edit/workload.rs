//! The rewrite both servers perform: a 60-line Rust function written with index loops and
//! manual bookkeeping, rewritten with iterators and a helper. The file around it is small and
//! fixed, so every run edits the same text.

use testkit::fake_model::tokenize;

/// The text before the function.
const PREFIX: &str = r#"use std::collections::HashMap;

use crate::model::{CustomerId, Date, Order, OrderId, Summary};

/// How many customers the summary lists.
const TOP_CUSTOMERS: usize = 5;

"#;

/// The function the user selects.
const ORIGINAL: &str = r#"pub fn summarize_orders(orders: &[Order], today: Date) -> Summary {
    let mut total = 0;
    let mut count = 0;
    let mut late = Vec::new();
    let mut by_customer = HashMap::new();
    let mut largest: Option<(&Order, u64)> = None;
    for i in 0..orders.len() {
        let order = &orders[i];
        if order.cancelled == true {
            continue;
        }
        count = count + 1;
        let mut amount = 0;
        for j in 0..order.lines.len() {
            let line = &order.lines[j];
            amount = amount + line.quantity * line.unit_price_cents;
            if line.discount_percent > 0 {
                amount = amount - line.quantity * line.unit_price_cents * line.discount_percent / 100;
            }
        }
        total = total + amount;
        if order.due < today {
            if order.shipped == false {
                late.push(order.id.clone());
            }
        }
        match by_customer.get_mut(&order.customer) {
            Some(entry) => {
                *entry = *entry + amount;
            }
            None => {
                by_customer.insert(order.customer.clone(), amount);
            }
        }
        match largest {
            Some((_, current)) => {
                if current < amount {
                    largest = Some((order, amount));
                }
            }
            None => {
                largest = Some((order, amount));
            }
        }
    }
    let mut top_customers = Vec::new();
    for (customer, amount) in by_customer.iter() {
        top_customers.push((customer.clone(), *amount));
    }
    top_customers.sort_by(|a, b| b.1.cmp(&a.1));
    if top_customers.len() > TOP_CUSTOMERS {
        top_customers.truncate(TOP_CUSTOMERS);
    }
    let average = if count > 0 { total / count } else { 0 };
    Summary {
        total_cents: total,
        order_count: count,
        average_cents: average,
        late_order_ids: late,
        top_customers: top_customers,
        largest_order_id: largest.map(|(order, _)| order.id.clone()),
    }
}"#;

/// The text after the function.
const SUFFIX: &str = r#"

#[cfg(test)]
mod tests;
"#;

/// What the model answers: the rewritten function, about 60 lines.
const REWRITE: &str = r#"/// Totals the orders that were not cancelled: revenue, average order value, the orders that
/// are late, the best customers and the largest order.
pub fn summarize_orders(orders: &[Order], today: Date) -> Summary {
    let active: Vec<&Order> = orders.iter().filter(|order| !order.cancelled).collect();

    // Each order's value after line discounts, computed once and reused below.
    let amounts: Vec<(&Order, u64)> = active
        .iter()
        .map(|order| (*order, order_amount_cents(order)))
        .collect();

    let total_cents: u64 = amounts.iter().map(|(_, amount)| amount).sum();
    let order_count = amounts.len() as u64;
    let average_cents = total_cents.checked_div(order_count).unwrap_or(0);

    // An order is late when its due date has passed and it has not shipped yet.
    let late_order_ids: Vec<OrderId> = active
        .iter()
        .filter(|order| order.due < today && !order.shipped)
        .map(|order| order.id.clone())
        .collect();

    let mut by_customer: HashMap<&CustomerId, u64> = HashMap::new();
    for (order, amount) in &amounts {
        *by_customer.entry(&order.customer).or_default() += amount;
    }

    // Highest spend first; ties broken by customer id so the report is stable.
    let mut top_customers: Vec<(CustomerId, u64)> = by_customer
        .into_iter()
        .map(|(customer, amount)| (customer.clone(), amount))
        .collect();
    top_customers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_customers.truncate(TOP_CUSTOMERS);

    let largest_order_id = amounts
        .iter()
        .max_by_key(|(_, amount)| *amount)
        .map(|(order, _)| order.id.clone());

    Summary {
        total_cents,
        order_count,
        average_cents,
        late_order_ids,
        top_customers,
        largest_order_id,
    }
}

/// The value of one order in cents, after each line's percentage discount.
fn order_amount_cents(order: &Order) -> u64 {
    order
        .lines
        .iter()
        .map(|line| {
            let gross = line.quantity * line.unit_price_cents;
            let discount = gross * line.discount_percent / 100;
            gross - discount
        })
        .sum()
}"#;

/// The instruction given to both servers.
pub const INSTRUCTION: &str =
    "Rewrite this function idiomatically with iterators, keeping its behaviour";

/// One rewrite: the document, the selected range and the model's answer.
pub struct Workload {
    /// The document before the edit.
    pub original: String,
    /// The selection in LSP coordinates (line, UTF-16 column; the text is ASCII), from the
    /// first character of the function to the end of its closing brace.
    pub range: ((u32, u32), (u32, u32)),
    /// The model's answer, which replaces the selection.
    pub reply: String,
    /// The document after the edit.
    pub expected: String,
    /// How many tokens the fake streams for the answer.
    pub reply_tokens: usize,
    pub reply_lines: usize,
    pub selected_lines: usize,
}

impl Workload {
    /// The workload; with `tokens`, the answer is cut or extended (by repeating its lines) at a
    /// line boundary to about that many tokens.
    pub fn new(tokens: Option<usize>) -> Workload {
        let reply = match tokens {
            None => REWRITE.to_string(),
            Some(wanted) => reply_of_about(wanted),
        };
        let start_line = PREFIX.lines().count() as u32;
        let selected_lines = ORIGINAL.lines().count();
        let last_line = ORIGINAL.lines().last().unwrap_or_default();
        let end = (
            start_line + selected_lines as u32 - 1,
            last_line.len() as u32,
        );
        Workload {
            original: format!("{PREFIX}{ORIGINAL}{SUFFIX}"),
            range: ((start_line, 0), end),
            expected: format!("{PREFIX}{reply}{SUFFIX}"),
            reply_tokens: tokenize(&reply).len(),
            reply_lines: reply.lines().count(),
            selected_lines,
            reply,
        }
    }
}

/// The rewrite's lines, cycled, until the answer has at least `wanted` tokens (at least one
/// line).
fn reply_of_about(wanted: usize) -> String {
    let mut reply = String::new();
    for line in REWRITE.lines().cycle() {
        if !reply.is_empty() && tokenize(&reply).len() >= wanted {
            break;
        }
        if !reply.is_empty() {
            reply.push('\n');
        }
        reply.push_str(line);
    }
    reply
}
