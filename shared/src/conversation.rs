//! The vocabulary of a chat conversation: where it happened and who served the customer.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::validate::{Fields, check_id};

/// Where the customer talked to the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    App,
    Wechat,
    MiniProgram,
    Whatsapp,
    Email,
    Sms,
    Phone,
}

impl Channel {
    pub const ALL: [(&'static str, Channel); 8] = [
        ("web", Channel::Web),
        ("app", Channel::App),
        ("wechat", Channel::Wechat),
        ("mini_program", Channel::MiniProgram),
        ("whatsapp", Channel::Whatsapp),
        ("email", Channel::Email),
        ("sms", Channel::Sms),
        ("phone", Channel::Phone),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, c)| *c == self).map(|(n, _)| *n).unwrap_or("web")
    }
}

/// Who handled the conversation: the bot alone, or a human agent (possibly after a bot hand-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServedByKind {
    Bot,
    Agent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedBy {
    pub kind: ServedByKind,
    /// The bot intent that handled the conversation (e.g. `track_order`), where the bot knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl ServedBy {
    pub(crate) fn parse(fields: &mut Fields<'_>, key: &str, object: &Map<String, Value>) -> Option<ServedBy> {
        let prefix = fields.path(key);
        let mut inner = Fields::new(object, &prefix, &["kind", "bot_intent", "agent_id"]);
        let kind = inner.one_of("kind", true, &[("bot", ServedByKind::Bot), ("agent", ServedByKind::Agent)]);
        let bot_intent = inner.string("bot_intent", false).and_then(|raw| {
            let path = inner.path("bot_intent");
            inner.keep(check_id(&path, raw))
        });
        let agent_id = inner.id("agent_id", false);
        if kind == Some(ServedByKind::Bot) && agent_id.is_some() {
            inner.fail("agent_id", "not_allowed", "is only allowed when kind is \"agent\"");
        }
        let ok = inner.errors.is_empty();
        fields.errors.append(&mut inner.errors);
        if ok { kind.map(|kind| ServedBy { kind, bot_intent, agent_id }) } else { None }
    }
}
