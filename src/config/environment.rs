//! The process environment as the configuration reads it: only the variables it may read
//! (`MESHINIT_*`, scuttle's, KUBERNETES_SERVICE_HOST), taken in one pass over `environ`
//! without copying the rest — start-up time is measured against tini's — and listed, so
//! that a misspelt `MESHINIT_*` variable can be pointed out. A variable set to the empty
//! string is unset here, as scuttle (Go's `os.Getenv`), `${VAR:-default}` and env_logger
//! read it, and as Helm charts render an unset value; its name is kept, to be said.

use std::ffi::{CStr, OsString};
use std::os::unix::ffi::OsStringExt;

extern "C" {
    /// libc's environment: NUL-terminated `NAME=value` strings, then a null pointer.
    static environ: *const *const libc::c_char;
}

pub struct Environment {
    vars: Vec<(String, OsString)>,
    /// The variables that were set to the empty string.
    empty: Vec<String>,
}

impl Environment {
    /// The variables of this process whose name `wanted` accepts.
    pub fn from_process(wanted: impl Fn(&str) -> bool) -> Environment {
        let mut env = Environment {
            vars: Vec::new(),
            empty: Vec::new(),
        };
        // SAFETY: one thread (see init/mod.rs), and meshinit changes no variable, so
        // `environ` stays as the kernel and libc laid it out: valid NUL-terminated strings
        // up to a null pointer.
        unsafe {
            let mut entry = environ;
            while !entry.is_null() && !(*entry).is_null() {
                let bytes = CStr::from_ptr(*entry).to_bytes();
                if let Some(eq) = bytes.iter().position(|b| *b == b'=') {
                    if let Ok(name) = std::str::from_utf8(&bytes[..eq]) {
                        if wanted(name) {
                            let value = OsString::from_vec(bytes[eq + 1..].to_vec());
                            env.add(name.to_owned(), value);
                        }
                    }
                }
                entry = entry.add(1);
            }
        }
        env
    }

    /// One variable: an empty one is unset, its name kept.
    fn add(&mut self, name: String, value: OsString) {
        if value.is_empty() {
            self.empty.push(name);
        } else {
            self.vars.push((name, value));
        }
    }

    /// The names of the variables set to the empty string.
    pub fn empty(&self) -> &[String] {
        &self.empty
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
    pub fn new(vars: impl IntoIterator<Item = (String, OsString)>) -> Environment {
        let mut env = Environment {
            vars: Vec::new(),
            empty: Vec::new(),
        };
        for (name, value) in vars {
            env.add(name, value);
        }
        env
    }

    pub fn of(pairs: &[(&str, &str)]) -> Environment {
        Environment::new(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), OsString::from(v))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_environment_is_read_as_std_reads_it() {
        let wanted = |name: &str| name == "PATH" || name == "HOME";
        let env = Environment::from_process(wanted);
        for name in ["PATH", "HOME"] {
            let set = std::env::var_os(name).filter(|v| !v.is_empty());
            assert_eq!(env.get(name), set, "{name}");
        }
        assert!(env.names().all(wanted));
    }

    #[test]
    fn an_empty_variable_is_unset_and_named() {
        let env = Environment::of(&[
            ("ENVOY_ADMIN_API", ""),
            ("MESHINIT_MESH", "none"),
            ("MESHINIT_TIMEOUT", ""),
        ]);
        assert_eq!(env.get("ENVOY_ADMIN_API"), None);
        assert_eq!(env.empty(), ["ENVOY_ADMIN_API", "MESHINIT_TIMEOUT"]);
        assert!(env.names().all(|n| n == "MESHINIT_MESH"));
    }
}
