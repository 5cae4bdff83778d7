//! Header edits: the `origin_request` / `origin_response` actions of a
//! behavior (SPEC §2), as data the head writers apply (`http::write`).
//! Validated and built by `config`; kept here so that `http/` needs nothing
//! from the configuration layer.

/// One piece of a header action value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValuePart {
    Lit(String),
    Attempt,
    Origin,
    Role,
}

/// `origin_request` / `origin_response`, validated: lowercase names, values
/// split at their placeholders.
#[derive(Debug, Clone, Default)]
pub struct HeaderActions {
    pub set: Vec<(String, Vec<ValuePart>)>,
    pub remove: Vec<String>,
}

impl HeaderActions {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// True when the header named `name` (any case) is set or removed here.
    pub fn touches(&self, name: &[u8]) -> bool {
        self.set.iter().any(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            || self.remove.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Appends `value` with its placeholders filled in.
    pub fn render(parts: &[ValuePart], attempt: u32, origin: &str, role: &str, out: &mut Vec<u8>) {
        for p in parts {
            match p {
                ValuePart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                ValuePart::Attempt => out.extend_from_slice(itoa::Buffer::new().format(attempt).as_bytes()),
                ValuePart::Origin => out.extend_from_slice(origin.as_bytes()),
                ValuePart::Role => out.extend_from_slice(role.as_bytes()),
            }
        }
    }
}
