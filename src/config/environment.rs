//! The process environment as the configuration reads it: looked up by name, and listed, so
//! that a misspelt `MESHINIT_*` variable can be pointed out.

use std::ffi::OsString;

pub struct Environment {
    vars: Vec<(String, OsString)>,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment::new(
            std::env::vars_os()
                .filter_map(|(name, value)| name.into_string().ok().map(|name| (name, value))),
        )
    }

    pub fn new(vars: impl IntoIterator<Item = (String, OsString)>) -> Environment {
        Environment {
            vars: vars.into_iter().collect(),
        }
    }

    /// The value of `name`; the last one where a name is given twice.
    pub fn get(&self, name: &str) -> Option<OsString> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(name, _)| name.as_str())
    }
}

#[cfg(test)]
impl Environment {
    pub fn of(pairs: &[(&str, &str)]) -> Environment {
        Environment::new(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), OsString::from(v))),
        )
    }
}
