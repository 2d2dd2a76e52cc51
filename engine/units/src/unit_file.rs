//! Rendering a unit resource as the file systemd reads.

use archy_graph::resource::UnitSpec;

/// Keys that change what a person reads, never what systemd does: a change
/// to them alone does not restart a unit (NixOS's switch-to-configuration
/// ignores the same ones).
pub const COSMETIC_KEYS: &[&str] = &["Description", "Documentation"];

/// True when `key` under `[section]` does not affect the running unit.
pub fn is_cosmetic(section: &str, key: &str) -> bool {
    (section == "Unit" && COSMETIC_KEYS.contains(&key)) || key.starts_with("X-")
}

/// A `unit(...)` resource read as its unit file. A trait, so that the type
/// stays archy-graph's and its systemd reading this crate's.
pub trait UnitFile {
    /// The unit file: a header saying who owns it, then each section.
    fn unit_file(&self) -> String;

    /// The values of `key` under `[section]`, each space-separated word on
    /// its own (`After=a.service b.service` gives two).
    fn values(&self, section: &str, key: &str) -> Vec<&str>;

    /// The sections whose settings differ from `other`'s, ignoring
    /// cosmetic keys.
    fn changed_sections(&self, other: &Self) -> Vec<String>;
}

impl UnitFile for UnitSpec {
    fn unit_file(&self) -> String {
        crate::units::render(&self.sections)
    }

    fn values(&self, section: &str, key: &str) -> Vec<&str> {
        crate::units::section_values(&self.sections, section, key)
    }

    fn changed_sections(&self, other: &UnitSpec) -> Vec<String> {
        crate::units::changed_sections(&self.sections, &other.sections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use archy_graph::names::UnitName;
    use archy_graph::resource::{OnChange, UnitSection};

    fn unit(description: &str, exec: &str) -> UnitSpec {
        UnitSpec {
            name: UnitName::try_from("a.service").unwrap(),
            sections: vec![
                UnitSection {
                    name: "Unit".into(),
                    entries: vec![
                        ("Description".into(), description.into()),
                        ("After".into(), "b.service c.service".into()),
                    ],
                },
                UnitSection {
                    name: "Service".into(),
                    entries: vec![("ExecStart".into(), exec.into())],
                },
            ],
            on_change: OnChange::Restart,
            reads: vec![],
            secrets: vec![],
            health: true,
        }
    }

    #[test]
    fn renders_sections_in_order() {
        let text = unit("A", "/bin/a").unit_file();
        assert!(
            text.ends_with(
                "[Unit]\nDescription=A\nAfter=b.service c.service\n\n[Service]\nExecStart=/bin/a\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn cosmetic_changes_are_not_changes() {
        assert!(
            unit("A", "/bin/a")
                .changed_sections(&unit("B", "/bin/a"))
                .is_empty()
        );
        assert_eq!(
            unit("A", "/bin/a").changed_sections(&unit("A", "/bin/b")),
            vec!["Service"]
        );
        assert_eq!(
            unit("A", "/bin/a").values("Unit", "After"),
            vec!["b.service", "c.service"]
        );
    }
}
