//! `{{host.NAME}}` templates, resolved at evaluation (for `derived_env`).
//! A template that names an unknown fact is an error, never an empty string.

use crate::host::{Host, fact_text};

/// Why a template could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub hint: String,
}

/// Replaces every `{{host.NAME}}` in `text` by that fact.
pub fn render(text: &str, host: &Host) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError {
                message: format!("template {text:?} has an unclosed {{{{"),
                hint: "write {{host.NAME}}".into(),
            });
        };
        let name = after[..end].trim();
        let Some(fact) = name.strip_prefix("host.") else {
            return Err(TemplateError {
                message: format!("template {text:?} names {name:?}, which is not a host fact"),
                hint: "templates can name host facts only: {{host.NAME}}".into(),
            });
        };
        match host.get(fact) {
            Some(v) => out.push_str(&fact_text(&v)),
            None => {
                return Err(TemplateError {
                    message: format!("template {text:?} names unknown host fact `{fact}`"),
                    hint: format!("the facts are: {}", host.known()),
                });
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use archy_graph::Fact;

    #[test]
    fn renders_and_records_use() {
        let host = Host::new(
            [
                ("ip".to_string(), Fact::Text("10.0.0.2".into())),
                ("hostname".to_string(), Fact::Text("n1".into())),
            ]
            .into(),
        );
        assert_eq!(
            render("http://{{ host.ip }}:8332", &host).unwrap(),
            "http://10.0.0.2:8332"
        );
        assert_eq!(host.used().len(), 1);
        assert!(
            render("{{host.nope}}", &host)
                .unwrap_err()
                .message
                .contains("unknown host fact `nope`")
        );
        assert!(render("{{host.ip", &host).is_err());
        assert!(render("{{secret.x}}", &host).is_err());
        assert_eq!(render("plain", &host).unwrap(), "plain");
    }
}
