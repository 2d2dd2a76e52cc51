//! Reading a constructor's options map into typed values. Every mistake is
//! recorded as a problem at the constructor's call and reading goes on, so
//! one evaluation reports all of them.

use std::collections::BTreeMap;

use archy_graph::{Problem, Span};
use rhai::{Dynamic, Map};

/// The options of one constructor call and the problems found in them.
pub struct Opts {
    /// The constructor and resource, for messages: `container "web"`.
    what: String,
    map: Map,
    at: Span,
    pub problems: Vec<Problem>,
}

/// The Rhai type of a value, as a node author knows it.
pub fn type_name(v: &Dynamic) -> &'static str {
    if v.is_string() {
        "a string"
    } else if v.is_int() {
        "an integer"
    } else if v.is_bool() {
        "a bool"
    } else if v.is_array() {
        "an array"
    } else if v.is_map() {
        "a map"
    } else if v.is_unit() {
        "()"
    } else if v.is_float() {
        "a float"
    } else if v.is::<crate::declare::Res>() {
        "a resource"
    } else {
        "a value of another type"
    }
}

impl Opts {
    /// `value` must be a map (or `()` for none) whose keys are all in
    /// `allowed`; unknown keys get a did-you-mean.
    pub fn new(what: String, value: Dynamic, allowed: &[&str], at: &Span) -> Self {
        let mut opts = Opts {
            what,
            map: Map::new(),
            at: at.clone(),
            problems: Vec::new(),
        };
        if value.is_unit() {
            return opts;
        }
        match value.try_cast::<Map>() {
            Some(map) => opts.map = map,
            None => {
                opts.fail("the options must be a map like #{ key: value }", None);
                return opts;
            }
        }
        let unknown: Vec<String> = opts
            .map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| k.to_string())
            .collect();
        for key in unknown {
            let hint = suggest(&key, allowed)
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("the options are: {}", allowed.join(", ")));
            opts.fail(&format!("has no option `{key}`"), Some(hint));
        }
        opts
    }

    /// Records a problem with this resource.
    pub fn fail(&mut self, message: &str, hint: Option<String>) {
        let mut p = Problem::at(&self.at, format!("{}: {message}", self.what));
        p.hint = hint;
        self.problems.push(p);
    }

    /// Records a problem with option `key`.
    pub fn fail_key(&mut self, key: &str, message: &str, hint: Option<String>) {
        self.fail(&format!("option `{key}` {message}"), hint);
    }

    fn wrong_type(&mut self, key: &str, want: &str, got: &Dynamic) {
        let got = type_name(got);
        self.fail_key(key, &format!("must be {want}, not {got}"), None);
    }

    /// Takes the raw value of `key`, if present and not `()`.
    pub fn take(&mut self, key: &str) -> Option<Dynamic> {
        self.map.remove(key).filter(|v| !v.is_unit())
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_unit())
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        let v = self.take(key)?;
        match v.clone().into_immutable_string() {
            Ok(s) => Some(s.to_string()),
            Err(_) => {
                self.wrong_type(key, "a string", &v);
                None
            }
        }
    }

    pub fn bool(&mut self, key: &str) -> Option<bool> {
        let v = self.take(key)?;
        match v.as_bool() {
            Ok(b) => Some(b),
            Err(_) => {
                self.wrong_type(key, "true or false", &v);
                None
            }
        }
    }

    /// An integer in `lo..=hi`.
    pub fn int(&mut self, key: &str, lo: i64, hi: i64) -> Option<i64> {
        let v = self.take(key)?;
        match v.as_int() {
            Ok(n) if (lo..=hi).contains(&n) => Some(n),
            Ok(n) => {
                self.fail_key(key, &format!("is {n}, outside {lo}..={hi}"), None);
                None
            }
            Err(_) => {
                self.wrong_type(key, "an integer", &v);
                None
            }
        }
    }

    /// A string or an integer, as text (sizes, modes, durations, cpus).
    pub fn scalar(&mut self, key: &str) -> Option<Scalar> {
        let v = self.take(key)?;
        if let Ok(n) = v.as_int() {
            return Some(Scalar::Int(n));
        }
        if let Ok(f) = v.as_float() {
            return Some(Scalar::Float(f));
        }
        match v.clone().into_immutable_string() {
            Ok(s) => Some(Scalar::Text(s.to_string())),
            Err(_) => {
                self.wrong_type(key, "a string or a number", &v);
                None
            }
        }
    }

    /// An array of strings. Empty strings are refused: they are always a
    /// mistake in an argv or a list of paths.
    pub fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        let v = self.take(key)?;
        let Some(items) = v.clone().try_cast::<rhai::Array>() else {
            self.wrong_type(key, "an array of strings", &v);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match item.clone().into_immutable_string() {
                Ok(s) if s.is_empty() => {
                    self.fail_key(key, &format!("has an empty string at index {i}"), None);
                }
                Ok(s) => out.push(s.to_string()),
                Err(_) => {
                    let got = type_name(&item);
                    self.fail_key(key, &format!("has {got} at index {i}, not a string"), None);
                }
            }
        }
        Some(out)
    }

    /// A map from names to strings (numbers and bools are written as text).
    pub fn string_map(&mut self, key: &str) -> Option<BTreeMap<String, String>> {
        let v = self.take(key)?;
        let Some(map) = v.clone().try_cast::<Map>() else {
            self.wrong_type(key, "a map of strings", &v);
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, item) in map {
            match scalar_text(&item) {
                Some(s) => {
                    out.insert(k.to_string(), s);
                }
                None => {
                    let got = type_name(&item);
                    self.fail_key(key, &format!("has {got} at `{k}`, not a string"), None);
                }
            }
        }
        Some(out)
    }

    /// A constructor's first argument (a path or a name) as a checked
    /// newtype; problems are recorded.
    pub fn first_arg<T>(&mut self, value: &Dynamic) -> Option<T>
    where
        T: for<'s> TryFrom<&'s str, Error = archy_graph::names::NameError>,
    {
        self.first_arg_with(value, |s| T::try_from(s))
    }

    /// Like [`Opts::first_arg`], through any check.
    pub fn first_arg_with<T, E: CheckError>(
        &mut self,
        value: &Dynamic,
        check: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let Ok(s) = value.clone().into_immutable_string() else {
            let got = type_name(value);
            self.fail(
                &format!("the first argument must be a string, not {got}"),
                None,
            );
            return None;
        };
        match check(&s) {
            Ok(v) => Some(v),
            Err(e) => {
                let (msg, hint) = e.parts();
                self.fail(&msg, hint);
                None
            }
        }
    }

    /// Converts through a checked constructor, recording its error.
    pub fn checked<T, E: CheckError>(&mut self, key: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let (msg, hint) = e.parts();
                self.fail(&format!("option `{key}`: {msg}"), hint);
                None
            }
        }
    }
}

/// A scalar option value.
#[derive(Debug, Clone)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Text for a string, integer or bool; `None` for anything else.
pub fn scalar_text(v: &Dynamic) -> Option<String> {
    if let Ok(s) = v.clone().into_immutable_string() {
        return Some(s.to_string());
    }
    if let Ok(n) = v.as_int() {
        return Some(n.to_string());
    }
    v.as_bool().ok().map(|b| b.to_string())
}

/// Errors of the checked newtypes, as (message, hint).
pub trait CheckError {
    fn parts(self) -> (String, Option<String>);
}

impl CheckError for archy_graph::names::NameError {
    fn parts(self) -> (String, Option<String>) {
        (self.message, self.hint)
    }
}

impl CheckError for archy_graph::quantity::QuantityError {
    fn parts(self) -> (String, Option<String>) {
        (self.message, Some(self.hint))
    }
}

/// The closest of `options` to `word`, if it is close enough to be a typo.
pub fn suggest<'s>(word: &str, options: &[&'s str]) -> Option<&'s str> {
    options
        .iter()
        .map(|o| (strsim::jaro_winkler(o, word), *o))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, o)| o)
}

impl Opts {
    /// `mode`: an integer (`0o644`) or an octal string (`"0644"`).
    pub fn mode(&mut self, default: archy_graph::names::Mode) -> Option<archy_graph::names::Mode> {
        use archy_graph::names::Mode;
        match self.scalar("mode") {
            None => Some(default),
            Some(Scalar::Int(n)) => {
                let r = u32::try_from(n).map_err(|_| archy_graph::names::NameError {
                    message: format!("mode {n} is negative or too large"),
                    hint: Some("write modes in octal, like 0o644 or \"0644\"".into()),
                });
                match r {
                    Ok(v) => self.checked("mode", Mode::try_from(v)),
                    Err(e) => self.checked::<Mode, _>("mode", Err(e)),
                }
            }
            Some(Scalar::Text(s)) => self.checked("mode", Mode::try_from(s.as_str())),
            Some(Scalar::Float(_)) => {
                self.fail_key("mode", "must be an octal integer like 0o644", None);
                None
            }
        }
    }

    /// An account name option (`owner`, `group`).
    pub fn account(&mut self, key: &str) -> Option<archy_graph::names::AccountName> {
        let s = self.string(key)?;
        self.checked(key, archy_graph::names::AccountName::try_from(s.as_str()))
    }

    /// An absolute path option.
    pub fn abs_path(&mut self, key: &str) -> Option<archy_graph::names::AbsPath> {
        let s = self.string(key)?;
        self.checked(key, archy_graph::names::AbsPath::try_from(s.as_str()))
    }

    /// `on_change`: "restart" (default), "reload" or "keep".
    pub fn on_change(&mut self) -> archy_graph::resource::OnChange {
        use archy_graph::resource::OnChange;
        match self.string("on_change").as_deref() {
            None | Some("restart") => OnChange::Restart,
            Some("reload") => OnChange::Reload,
            Some("keep") => OnChange::Keep,
            Some("stop-start") => OnChange::StopStart,
            Some(other) => {
                let msg = format!("is {other:?}");
                self.fail_key(
                    "on_change",
                    &msg,
                    Some("use \"restart\", \"reload\", \"stop-start\" or \"keep\"".into()),
                );
                OnChange::Restart
            }
        }
    }

    /// `within`: a deadline, default 30 s. An integer is seconds.
    pub fn within(&mut self) -> Option<archy_graph::quantity::Millis> {
        match self.duration("within") {
            Ok(None) => Some(archy_graph::quantity::Millis(30_000)),
            Ok(Some(d)) => Some(d),
            Err(()) => None,
        }
    }

    /// A positive duration like "30s" or "10min"; an integer is seconds.
    /// `Err` when it was given but is not one (the problem is recorded).
    pub fn duration(&mut self, key: &str) -> Result<Option<archy_graph::quantity::Millis>, ()> {
        use archy_graph::quantity::Millis;
        match self.scalar(key) {
            None => Ok(None),
            Some(Scalar::Int(n)) if n > 0 => Ok(Some(Millis(n as u64 * 1000))),
            Some(Scalar::Text(s)) => self
                .checked(key, Millis::try_from(s.as_str()))
                .map(Some)
                .ok_or(()),
            Some(_) => {
                self.fail_key(
                    key,
                    "must be a duration like \"30s\" or a number of seconds",
                    None,
                );
                Err(())
            }
        }
    }
}

/// A constructor's first argument for messages: `"/etc/x"`, or its type.
pub fn display(v: &Dynamic) -> String {
    match v.clone().into_immutable_string() {
        Ok(s) => format!("{:?}", s.as_str()),
        Err(_) => format!("({})", type_name(v)),
    }
}
