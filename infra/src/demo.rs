//! A realistic demo of the last few weeks, generated (not taken from `../shared/data`), so a newcomer
//! sees a full dashboard and a Monday digest within about three minutes of `make demo`.
//!
//! It goes through the real system wherever the real system allows: customers' contact details,
//! chat messages and closings through the local API (the real functions: triggers, staff alerts,
//! follow-up queueing), analysis through the table's stream, follow-ups by firing the real
//! schedule at past times, and the Monday report by firing the weekly schedule. Only ratings are
//! written straight through the rating store, because the API stamps them with the current time
//! and the demo needs them in past weeks.
//!
//! The story: delivery complaints climb to the top in the last full week (a courier problem),
//! refund complaints fade, packaging damage appears. Customers have order histories (a few are
//! VIPs); a delivery complaint comes with an order late against its promise, so the reply
//! strategy calls for a recovery offer, which the demo storefront makes (or not) and customers
//! accept (or not), and some order again afterwards: the report's offers and their payoff. This
//! week's delayed orders get proactive apologies. Deterministic: the same seed, the same demo.

use std::sync::Arc;

use feedback::Timestamp;
use feedback::ratings::RatingStore;
use feedback::reporting::ReportStore;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::BoxError;
use crate::http::send;

/// Issue scenarios and what customers say about them (generated phrasing, several per type).
const PROBLEMS: &[(&str, &[&str])] = &[
    (
        "logistics",
        &[
            "快递太慢了，{n}天了还没到",
            "物流信息{n}天没更新了，到底发没发货",
            "说好的48小时发货，现在{n}天了还没动静",
            "快递员直接把包裹放门口，也不打电话",
            "The parcel is {n} days late and tracking has not moved",
            "都{n}天了还没收到，急用的",
        ],
    ),
    (
        "quality",
        &[
            "质量太差了，用了{n}天就坏了",
            "做工粗糙，线头很多，和描述不符",
            "颜色和图片差很多，有色差",
            "The zipper broke after {n} days",
            "收到就有划痕，质量不行",
        ],
    ),
    (
        "refund_return",
        &[
            "退款申请了{n}天还没到账",
            "退货流程太麻烦了，寄回去{n}天没人处理",
            "要求退款，客服一直拖着",
            "I asked for a refund {n} days ago and heard nothing",
        ],
    ),
    (
        "service",
        &["客服回复太慢了，等了{n}个小时", "机器人答非所问，转人工也没人理", "客服态度很差，问了{n}遍都说不清楚"],
    ),
    ("price", &["刚买{n}天就降价了，能不能补差价", "优惠券用不了，结算的时候没减"]),
    ("packaging", &["包装破损，里面的东西压坏了", "盒子都压扁了，送人都没法送", "外包装湿了，{n}个里面坏了一个"]),
    ("payment", &["付款失败但是钱扣了", "支付一直提示错误，试了{n}次"]),
];

const PRAISE: &[&str] = &[
    "很满意，物流很快，第{n}天就到了",
    "质量很好，下次还来",
    "客服很耐心，问题解决了，谢谢",
    "Great service, arrived in {n} days, thank you!",
    "东西不错，包装也很仔细",
    "回复很及时，好评",
];

const QUESTIONS: &[&str] = &[
    "请问什么时候发货？",
    "这个有优惠吗",
    "能开发票吗",
    "How long does shipping to Shanghai take?",
    "请问有{n}号尺码吗",
    "可以改收货地址吗",
];

/// Said after a complaint by the angriest customers (keyword triggers: complaint, escalation).
const ESCALATIONS: &[&str] =
    &["我要投诉", "问题还是没解决，不满意", "再不处理就差评", "转人工", "如果明天还不发货就申请退款"];

/// Week shares of each problem type, oldest week first (the story), and of praise and questions.
fn mix(week_index: usize, weeks: usize) -> Vec<(&'static str, f64)> {
    let t = if weeks <= 1 { 1.0 } else { week_index as f64 / (weeks - 1) as f64 };
    let last_full = week_index + 2 == weeks;
    vec![
        ("logistics", if last_full { 0.24 } else { 0.08 + 0.06 * t }),
        ("quality", 0.08),
        ("refund_return", 0.09 - 0.05 * t),
        ("service", 0.06),
        ("price", 0.03),
        ("packaging", if last_full { 0.07 } else { 0.015 }),
        ("payment", 0.015),
        ("praise", if last_full { 0.26 } else { 0.38 }),
        ("question", 0.22),
    ]
}

/// SplitMix64: small, deterministic, good enough for a demo.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn text(&mut self, items: &[&str]) -> String {
        let n = 2 + self.below(9);
        let mut t = self.pick(items).replace("{n}", &n.to_string());
        match self.below(6) {
            0 => t.push('！'),
            1 => t.push_str("。。"),
            2 => t.push_str(" 😡"),
            _ => {}
        }
        t
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DemoSummary {
    pub weeks: Vec<String>,
    pub customers: usize,
    pub conversations: usize,
    pub messages: usize,
    pub ratings: usize,
    pub follow_up_runs: usize,
    pub follow_ups_sent: usize,
    pub follow_up_answers: usize,
    pub order_events: usize,
    pub offers_suggested: usize,
    pub offers_made: usize,
    pub report_week: Option<String>,
    pub seconds: f64,
}

struct Conversation {
    id: String,
    customer: String,
    scenario: &'static str,
    at: Timestamp,
    text: String,
    escalation: Option<String>,
    resolved: bool,
    rating: Option<(u8, Option<String>, Option<i64>)>,
}

/// Seeds `weeks` weeks (the current one so far and the full ones before it) through the local
/// system at `base` (the runner's address), then makes the Monday report of the last full week.
pub async fn seed(
    base: &str,
    caller_key: &str,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    weeks: usize,
    per_week: usize,
) -> Result<DemoSummary, BoxError> {
    let started = std::time::Instant::now();
    let now = Timestamp::now();
    let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai")?;
    let today = shanghai.to_datetime(now).date();
    let this_monday = today.checked_sub(jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))?;
    let mut rng = Rng(0x5eed_f00d);
    let auth = format!("Bearer {caller_key}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let mut summary = DemoSummary::default();

    // Customers: most gave an e-mail address with consent, some only a phone for SMS.
    let customers: Vec<String> = (1..=per_week * 3 / 2).map(|i| format!("demo-u-{i:04}")).collect();
    let limit = Arc::new(Semaphore::new(6));
    let mut calls = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let body = match i % 10 {
            0 | 1 => continue,
            2 => json!({"phone": format!("+8613800{:05}0", i), "consent": {"email": false, "sms": true},
                        "time_zone": "Asia/Shanghai", "locale": "zh-CN"}),
            3 => json!({"email": format!("{customer}@example.com"), "consent": {"email": true, "sms": false},
                        "time_zone": "Europe/London", "locale": "en-GB"}),
            _ => json!({"email": format!("{customer}@example.com"), "consent": {"email": true, "sms": false},
                        "time_zone": "Asia/Shanghai", "locale": "zh-CN"}),
        };
        let url = format!("{base}/customers/{customer}/contact");
        calls.push(("PUT", url, body));
    }
    summary.customers = calls.len();
    run_calls(calls, &headers, &limit).await?;
    tracing::info!(customers = summary.customers, seconds = started.elapsed().as_secs_f64(), "demo: contact details");

    // Conversations, week by week.
    let mut conversations = Vec::new();
    for k in 0..weeks {
        let monday = this_monday.checked_sub(jiff::Span::new().days(7 * (weeks - 1 - k) as i64))?;
        summary.weeks.push(feedback::time::IsoWeek::of_date(monday).to_string());
        let last_full = k + 2 == weeks;
        // The demo week (the last full one) is the big one; earlier weeks give the trend.
        let count = if last_full { per_week } else { per_week * (2 + k) / 10 };
        let shares = mix(k, weeks);
        for n in 0..count {
            let day = monday.checked_add(jiff::Span::new().days(rng.below(7) as i64))?;
            let minute = 9 * 60 + rng.below(13 * 60) as i64;
            let at = shanghai.to_timestamp(day.at((minute / 60) as i8, (minute % 60) as i8, rng.below(60) as i8, 0))?;
            if at > now.checked_sub(jiff::Span::new().minutes(15))? {
                continue;
            }
            let mut roll = (rng.below(10_000) as f64) / 10_000.0;
            let scenario = shares.iter().find(|(_, s)| {
                roll -= s;
                roll < 0.0
            });
            let scenario = scenario.map_or("question", |(name, _)| *name);
            let customer = customers[rng.below(customers.len() as u64) as usize].clone();
            let (text, resolved, stars) = match scenario {
                "praise" => (rng.text(PRAISE), true, 4 + rng.below(2) as u8),
                "question" => (rng.text(QUESTIONS), true, 3 + rng.below(3) as u8),
                problem => {
                    let phrases = PROBLEMS.iter().find(|(t, _)| *t == problem).map(|(_, p)| *p).unwrap_or(&[]);
                    (rng.text(phrases), rng.chance(0.5), 1 + rng.below(3) as u8)
                }
            };
            let is_problem = !matches!(scenario, "praise" | "question");
            let escalation = (is_problem && rng.chance(0.25)).then(|| rng.pick(ESCALATIONS).to_owned());
            let rated = if is_problem { rng.chance(if resolved { 0.6 } else { 0.3 }) } else { rng.chance(0.45) };
            let rating = rated.then(|| {
                let comment = rng.chance(0.75).then(|| if is_problem { text.clone() } else { rng.text(PRAISE) });
                let value = rng.chance(0.5).then(|| (29 + rng.below(870) as i64) * 100);
                (stars, comment, value)
            });
            conversations.push(Conversation {
                id: format!("demo-{}-{n:04}", summary.weeks[k]),
                customer,
                scenario,
                at,
                text,
                escalation,
                resolved,
                rating,
            });
        }
    }
    summary.conversations = conversations.len();

    // Order histories: every customer's earlier order (one in six a VIP's), and for each
    // delivery complaint the order it is about, shipped with a promise already missed; this
    // week's late orders are also reported delayed (a proactive apology).
    let first_monday_of_all = this_monday.checked_sub(jiff::Span::new().days(7 * weeks as i64))?;
    let history_at = shanghai.to_timestamp(first_monday_of_all.at(10, 0, 0, 0))?;
    let mut events = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let total = if i % 6 == 5 { 6_000.0 } else { 50.0 + (i * 37 % 850) as f64 };
        // One event says it all: an order first seen delivered is an order, delivered.
        events.push(json!({"event_id": format!("demo-hist-{customer}"), "type": "delivered",
            "order_id": format!("demo-o-{customer}-0"), "customer_id": customer,
            "at": (history_at - jiff::SignedDuration::from_hours(24 * 17)).to_string(), "total": total, "currency": "CNY",
            "items": [{"sku": "sku-1", "category": if i % 3 == 0 { "电子产品" } else { "服饰" }, "quantity": 1, "unit_price": total}]}));
    }
    let this_week = summary.weeks.last().cloned().unwrap_or_default();
    let mut after_chat = Vec::new();
    for c in conversations.iter().filter(|c| c.scenario == "logistics") {
        let order = format!("demo-o-{}", c.id);
        let promise = (c.at - jiff::Span::new().hours(20)).to_string();
        events.push(json!({"event_id": format!("demo-{}-shipped", c.id), "type": "shipped", "order_id": order,
            "customer_id": c.customer, "at": (c.at - jiff::Span::new().hours(96)).to_string(),
            "total": 199.0, "currency": "CNY", "promised_delivery_at": promise, "carrier": "顺丰"}));
        if c.id.contains(&this_week) {
            events.push(json!({"event_id": format!("demo-{}-delayed", c.id), "type": "delayed", "order_id": order,
                "customer_id": c.customer, "at": (c.at - jiff::Span::new().hours(2)).to_string(),
                "promised_delivery_at": (c.at + jiff::Span::new().hours(48)).to_string()}));
        }
        let delivered = c.at + jiff::Span::new().hours(40);
        if delivered < now {
            after_chat.push(json!({"event_id": format!("demo-{}-delivered", c.id), "type": "delivered",
                "order_id": order, "customer_id": c.customer, "at": delivered.to_string()}));
        }
    }
    summary.order_events = post_order_events(base, &headers, &limit, events).await?;
    tracing::info!(events = summary.order_events, seconds = started.elapsed().as_secs_f64(), "demo: order histories");

    let mut calls = Vec::new();
    for c in &conversations {
        let mut messages = vec![json!({"message_id": format!("{}-m1", c.id), "role": "customer", "text": c.text,
            "sent_at": c.at.to_string(), "customer_id": c.customer, "channel": "app"})];
        // The bot answers under an intent; the chat platform follows the reply strategy's
        // experiment arm (a warm, personal apology) for an unhappy customer.
        let (intent, reply, reaction) = bot_reply(c);
        messages.push(json!({"message_id": format!("{}-m2", c.id), "role": "bot", "text": reply, "bot_intent": intent,
            "sent_at": (c.at + jiff::Span::new().seconds(30)).to_string(), "customer_id": c.customer, "channel": "app"}));
        if let Some(reaction) = reaction {
            messages.push(json!({"message_id": format!("{}-m4", c.id), "role": "customer", "text": reaction,
                "sent_at": (c.at + jiff::Span::new().seconds(60)).to_string(), "customer_id": c.customer, "channel": "app"}));
        }
        if let Some(e) = &c.escalation {
            messages.push(json!({"message_id": format!("{}-m3", c.id), "role": "customer", "text": e,
                "sent_at": (c.at + jiff::Span::new().seconds(90)).to_string(), "customer_id": c.customer, "channel": "app"}));
        }
        summary.messages += messages.len();
        calls.push(("POST", format!("{base}/conversations/{}/messages", c.id), json!({ "messages": messages })));
    }
    let answers = run_calls(calls, &headers, &limit).await?;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "demo: messages");
    // Closed after their messages are in (a close estimates the satisfaction from them).
    let closes = conversations
        .iter()
        .map(|c| {
            let mut body = json!({"resolved": c.resolved, "closed_at": (c.at + jiff::Span::new().minutes(3)).to_string(),
                                  "customer_id": c.customer, "channel": "app"});
            if c.escalation.is_some() {
                // Escalated chats end with one of three agents.
                body["agent_id"] = json!(format!("agent-{}", 1 + feedback::insights::shard_of(&c.id, 3)));
            }
            ("POST", format!("{base}/conversations/{}/close", c.id), body)
        })
        .collect();
    run_calls(closes, &headers, &limit).await?;
    tracing::info!(conversations = summary.conversations, seconds = started.elapsed().as_secs_f64(), "demo: chats");

    // The storefront makes most offers the strategy suggests, customers accept most of those,
    // and customers who got one order again more often than those who did not.
    let mut rng = Rng(0x0ffe_4ed5);
    let mut reports = Vec::new();
    let mut offered: Vec<String> = Vec::new();
    let mut accepted: Vec<String> = Vec::new();
    for (url, answer) in &answers {
        let Some(offer) = answer["strategy"]["offer"].as_object() else { continue };
        let Some(id) = url.strip_prefix(&format!("{base}/conversations/")).and_then(|r| r.strip_suffix("/messages"))
        else {
            continue;
        };
        summary.offers_suggested += 1;
        let made = rng.chance(if offer["by"] == "agent" { 0.6 } else { 0.85 });
        let accepts = made && rng.chance(0.75);
        let body = if made { json!({"made": true, "accepted": accepts}) } else { json!({"made": false}) };
        if made {
            summary.offers_made += 1;
            offered.push(id.to_owned());
        }
        if accepts {
            accepted.push(id.to_owned());
        }
        reports.push(("POST", format!("{base}/conversations/{id}/offer"), body));
    }
    run_calls(reports, &headers, &limit).await?;
    tracing::info!(
        offers = summary.offers_suggested,
        seconds = started.elapsed().as_secs_f64(),
        "demo: offers reported"
    );
    // A customer who took the gesture rates the conversation better.
    for c in conversations.iter_mut().filter(|c| accepted.contains(&c.id)) {
        if let Some((stars, _, _)) = c.rating.as_mut() {
            *stars = (*stars + 2).min(5);
        }
    }
    // Repeat orders come days later, long after the profiles folded the offers in: wait for that
    // (the table's stream), so the orders below meet the offers they follow.
    let offered_customers: Vec<String> =
        conversations.iter().filter(|c| offered.contains(&c.id)).map(|c| c.customer.clone()).collect();
    let mut waiting = offered_customers.iter().peekable();
    for _ in 0..120 {
        while let Some(customer) = waiting.peek() {
            let profile = send("GET", &format!("{base}/customers/{customer}/profile"), &headers, "").await?;
            if profile.json()["feedback"]["offers_90d"].as_u64().unwrap_or(0) == 0 {
                break;
            }
            waiting.next();
        }
        if waiting.peek().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    for c in conversations.iter().filter(|c| c.scenario == "logistics") {
        let again = c.at + jiff::SignedDuration::from_hours(24 * (3 + rng.below(20) as i64));
        if again < now && rng.chance(if offered.contains(&c.id) { 0.55 } else { 0.3 }) {
            after_chat.push(json!({"event_id": format!("demo-{}-again", c.id), "type": "placed",
                "order_id": format!("demo-o-{}-again", c.id), "customer_id": c.customer, "at": again.to_string(),
                "total": 129.0, "currency": "CNY"}));
        }
    }
    summary.order_events += post_order_events(base, &headers, &limit, after_chat).await?;

    let ratings = feedback_aws::dynamo::DynamoRatingStore::new(dynamodb.clone(), table, 730);
    let mut writes = tokio::task::JoinSet::new();
    for c in &conversations {
        let Some((stars, comment, value)) = c.rating.clone() else { continue };
        let (ratings, limit) = (ratings.clone(), limit.clone());
        let (id, customer, at) = (c.id.clone(), c.customer.clone(), c.at + jiff::Span::new().minutes(5));
        writes.spawn(async move {
            let _permit = limit.acquire_owned().await.map_err(|e| e.to_string())?;
            store_rating(&ratings, &id, &customer, stars, comment, value, at, false).await.map_err(|e| e.to_string())
        });
    }
    while let Some(done) = writes.join_next().await {
        done??;
        summary.ratings += 1;
    }

    // Follow-ups: the real schedule, fired at 10:00 Shanghai every third past day (each run looks
    // 72 hours back, so none is missed; firing it every 15 minutes of five weeks would take moto
    // far longer than the minute the demo has). About four in ten customers answer through the
    // link, a few hours later.
    // From the week before the demo week on: earlier weeks' funnels matter less than a fast demo.
    let first_monday = this_monday.checked_sub(jiff::Span::new().days(7 * (weeks.min(3) as i64 - 1)))?;
    let mut day = first_monday.checked_add(jiff::Span::new().days(1))?;
    // Its own generator: how many conversations this week has so far (which depends on the day)
    // must not change who answers in earlier weeks.
    let mut rng = Rng(0xa115_ea5e);
    while day <= today {
        let time = shanghai.to_timestamp(day.at(10, 0, 0, 0))?;
        if time > now {
            break;
        }
        let reply = send("POST", &format!("{base}/_local/schedules/FollowUpSchedule?time={time}"), &[], "").await?;
        summary.follow_up_runs += 1;
        for f in reply.json()["follow_ups"].as_array().into_iter().flatten() {
            if f["result"]["outcome"] != "sent" {
                continue;
            }
            summary.follow_ups_sent += 1;
            let Some(c) = conversations.iter().find(|c| f["conversation_id"] == c.id.as_str()) else { continue };
            let answer_at = time + jiff::Span::new().hours(3);
            if c.rating.is_some() || answer_at > now || !rng.chance(0.4) {
                continue;
            }
            let stars = 2 + rng.below(3) as u8;
            let comment = rng.chance(0.5).then(|| rng.text(&["问题后来解决了，谢谢跟进", "处理得太慢了", "还行吧"]));
            store_rating(&ratings, &c.id, &c.customer, stars, comment, None, answer_at, true).await?;
            summary.follow_up_answers += 1;
            summary.ratings += 1;
        }
        day = day.checked_add(jiff::Span::new().days(3))?;
    }

    // This week's apologies were queued when their delayed events arrived (now): the next run in
    // Shanghai's daytime sends them. At night there that run is a few hours ahead; the demo plays
    // it now, as of its time (the runner fires a schedule as of any time).
    let local = shanghai.to_datetime(now);
    let daytime = if (9..21).contains(&local.hour()) {
        now
    } else {
        let morning = if local.hour() >= 21 { today.checked_add(jiff::Span::new().days(1))? } else { today };
        shanghai.to_timestamp(morning.at(9, 30, 0, 0))?
    };
    let reply = send("POST", &format!("{base}/_local/schedules/FollowUpSchedule?time={daytime}"), &[], "").await?;
    summary.follow_up_runs += 1;
    summary.follow_ups_sent += reply.json()["follow_ups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["result"]["outcome"] == "sent")
        .count();
    tracing::info!(
        ratings = summary.ratings,
        sent = summary.follow_ups_sent,
        seconds = started.elapsed().as_secs_f64(),
        "demo: ratings and follow-ups"
    );
    // Let the stream poller analyse everything, then make last week's Monday report.
    let store = feedback_aws::dynamo::DynamoReportStore::new(dynamodb.clone(), table, Default::default());
    let mut last = u64::MAX;
    let mut steady = 0;
    for _ in 0..240 {
        let total: u64 = store.headlines(&summary.weeks).await?.iter().map(|h| h.feedback + h.follow_ups_sent).sum();
        steady = if total == last { steady + 1 } else { 0 };
        if steady >= 4 {
            break;
        }
        last = total;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let monday_nine = shanghai.to_timestamp(this_monday.at(9, 0, 0, 0))?;
    let reply = send("POST", &format!("{base}/_local/schedules/WeeklySchedule?time={monday_nine}"), &[], "").await?;
    summary.report_week = reply.json()["run"]["week"].as_str().map(str::to_owned);
    summary.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    Ok(summary)
}

/// The bot's answer in a demo conversation (its intent and words) and how the customer takes it.
/// Order tracking answers with the parcel's news and is mostly thanked; the refund flow only asks
/// for patience and mostly angers (the demo's worst intent); an unhappy customer in the `warm` arm
/// of the tone experiment gets a warm, personal apology and takes it better. Deterministic: by a
/// hash of the conversation's id.
fn bot_reply(c: &Conversation) -> (&'static str, &'static str, Option<&'static str>) {
    let intent = match c.scenario {
        "logistics" => "track_order",
        "refund_return" => "refund_request",
        "quality" | "packaging" => "product_issue",
        "praise" => "thanks",
        _ => "faq",
    };
    let warm = feedback::experiments::Experiments::builtin()
        .arms_of(&c.id, feedback::experiments::day_of(c.at))
        .iter()
        .any(|(x, arm)| x == "warm_apology" && arm == "warm");
    let unhappy = !matches!(c.scenario, "praise" | "question");
    let reply = match intent {
        "refund_request" => "请耐心等待，退款会在7-15个工作日内原路退回。",
        _ if unhappy && warm => "真的非常抱歉给您添麻烦了！我已经亲自帮您加急处理，今天之内一定给您答复，辛苦您了。",
        "track_order" => "已为您查询：包裹已到达本地分拣中心，预计今天送达。",
        "product_issue" => "很抱歉，已为您登记，可以申请退换货，我们承担运费。",
        "thanks" => "感谢您的支持，欢迎再来！",
        _ => "您好，已为您解答，还有其他问题随时找我。",
    };
    if !unhappy {
        return (intent, reply, None);
    }
    // How likely the customer is pleased by the answer, in percent.
    let pleased = match intent {
        "refund_request" => 10,
        "track_order" => 45,
        _ => 35,
    } + if warm { 55 } else { 0 };
    let roll = u32::from(feedback::insights::shard_of(&c.id, 100));
    let reaction =
        if roll < pleased { "好的，谢谢，辛苦了" } else { "又让我等，每次都这样，太失望了" };
    (intent, reply, Some(reaction))
}

#[allow(clippy::too_many_arguments)]
async fn store_rating(
    ratings: &feedback_aws::dynamo::DynamoRatingStore,
    conversation_id: &str,
    customer_id: &str,
    stars: u8,
    comment: Option<String>,
    order_value_minor: Option<i64>,
    at: Timestamp,
    via_follow_up: bool,
) -> Result<(), BoxError> {
    let submission = feedback::ratings::RatingSubmission {
        conversation_id: conversation_id.into(),
        customer_id: customer_id.into(),
        stars,
        comment,
        channel: feedback::conversations::Channel::App,
        served_by: None,
        locale: None,
        issue_types: Vec::new(),
        order_value_minor,
        via_follow_up,
    };
    let key = via_follow_up.then(|| format!("demo-{conversation_id}"));
    let rating = feedback::ratings::Rating::new(submission, feedback::ratings::new_rating_id(at), at, key);
    ratings.insert_rating(&rating).await?;
    Ok(())
}

/// Order events through `POST /orders/events`, 25 a call; how many were sent.
async fn post_order_events(
    base: &str,
    headers: &[(&str, &str)],
    limit: &Arc<Semaphore>,
    events: Vec<Value>,
) -> Result<usize, BoxError> {
    let count = events.len();
    // One customer's events in one call, in order (a profile is written one event at a time).
    let calls = events
        .chunks(feedback::customers::orders::ORDER_BATCH_MAX)
        .map(|chunk| ("POST", format!("{base}/orders/events"), json!({ "events": chunk })))
        .collect();
    run_calls(calls, headers, limit).await?;
    Ok(count)
}

/// Runs the calls (a few at a time) and returns each answer's JSON with its URL.
async fn run_calls(
    calls: Vec<(&'static str, String, Value)>,
    headers: &[(&str, &str)],
    limit: &Arc<Semaphore>,
) -> Result<Vec<(String, Value)>, BoxError> {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (method, url, body) in calls {
        let permit = limit.clone().acquire_owned().await?;
        let headers = headers.clone();
        tasks.spawn(async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let reply = send(method, &url, &h, body.to_string()).await;
            // 503 and 429 say "retry, it is safe": moto gets slow while the stream is analysed.
            let mut reply = reply;
            for attempt in 1..=4u64 {
                match &reply {
                    Ok(r) if r.status == 503 || r.status == 429 => {
                        tokio::time::sleep(std::time::Duration::from_millis(250 * attempt)).await;
                        reply = send(method, &url, &h, body.to_string()).await;
                    }
                    _ => break,
                }
            }
            match reply {
                Ok(r) if r.status < 300 => {
                    drop(permit);
                    Ok((url, r.json()))
                }
                Ok(r) => Err(format!("{method} {url}: {} {}", r.status, String::from_utf8_lossy(&r.body))),
                Err(e) => Err(format!("{method} {url}: {e}")),
            }
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done??);
    }
    Ok(answers)
}
