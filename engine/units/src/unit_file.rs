//! Rendering a unit resource as the file systemd reads.

use archy_graph::resource::UnitSpec;

/// The `[Unit]` keys whose change alone never restarts a unit: what a
/// person reads (`Description=`, `Documentation=`), what systemd does on
/// another occasion (`OnFailure=`, `StopWhenUnneeded=`, ...) and what only
/// guards manual jobs (`RefuseManualStart=`). They take effect at the
/// daemon-reload. This is NixOS's list (switch-to-configuration's
/// `compare_units`), minus `X-Reload-Triggers`, which archy expresses as
/// `reads: [#{ path, on_change: "reload" }]`. Every other key counts, `X-`
/// keys and `[X-...]` sections too: NixOS compares them like any other,
/// and changing one is how an author forces a restart. `[Install]` is
/// compared apart (it only changes the enablement links).
pub const COSMETIC_KEYS: &[&str] = &[
    "Description",
    "Documentation",
    "OnFailure",
    "OnSuccess",
    "OnFailureJobMode",
    "IgnoreOnIsolate",
    "StopWhenUnneeded",
    "RefuseManualStart",
    "RefuseManualStop",
    "AllowIsolate",
    "CollectMode",
    "SourcePath",
];

/// True when `key` under `[section]` does not affect the running unit.
pub fn is_cosmetic(section: &str, key: &str) -> bool {
    section == "Unit" && COSMETIC_KEYS.contains(&key)
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
            reload_triggers: vec![],
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
    fn x_keys_and_sections_are_changes_refusals_are_not() {
        let with = |section: &str, key: &str| {
            let mut u = unit("A", "/bin/a");
            match u.sections.iter_mut().find(|s| s.name == section) {
                Some(s) => s.entries.push((key.into(), "yes".into())),
                None => u.sections.push(UnitSection {
                    name: section.into(),
                    entries: vec![(key.into(), "yes".into())],
                }),
            }
            u
        };
        let plain = unit("A", "/bin/a");
        assert_eq!(
            with("Unit", "X-Restart-Me").changed_sections(&plain),
            vec!["Unit"]
        );
        assert_eq!(
            with("Service", "X-Foo").changed_sections(&plain),
            vec!["Service"]
        );
        assert_eq!(
            with("X-Custom", "Bar").changed_sections(&plain),
            vec!["X-Custom"]
        );
        for key in [
            "RefuseManualStart",
            "RefuseManualStop",
            "OnFailure",
            "StopWhenUnneeded",
        ] {
            assert!(
                with("Unit", key).changed_sections(&plain).is_empty(),
                "{key}"
            );
        }
        // Only [Unit]'s list is cosmetic: a Description= elsewhere counts.
        assert_eq!(
            with("Service", "Description").changed_sections(&plain),
            vec!["Service"]
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
