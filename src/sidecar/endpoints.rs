//! What the wait and the quit follow: the sidecar's endpoints as the configuration resolved
//! them (`config::plan` is the only place that builds these).

use std::time::Duration;

/// The `mesh` of the endpoints that a quit tries when no search chose a mesh: every
/// candidate's, none of them known to be there.
pub const ANY_MESH: &str = "auto";

/// One sidecar: where to ask whether it is ready and how to make it quit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The mesh's name, for log lines.
    pub mesh: &'static str,
    /// Every one must answer 2xx once before the task starts.
    pub ready: Vec<String>,
    /// POSTed in order until one answers 2xx.
    pub quit: Vec<QuitUrl>,
    /// POSTed before `quit`, every one, whatever they answer (scuttle's GENERIC_QUIT_ENDPOINTS).
    pub notify: Vec<String>,
    /// Executables the /proc fallback may send SIGTERM to, in order of preference.
    pub executables: Vec<String>,
    /// How many of the first `ready` endpoints only find the sidecar and are not waited
    /// for (linkerd-await's LINKERD_AWAIT_DISABLED).
    pub find_only: usize,
}

impl Endpoints {
    /// As a sidecar known in advance: there is nothing to find, so what only finds it goes.
    pub fn known(mut self) -> Endpoints {
        self.ready.drain(..self.find_only.min(self.ready.len()));
        self.find_only = 0;
        self
    }

    /// The readiness endpoints still to pass once the first one answered `ready_first`.
    pub fn pending_after_first(&self, ready_first: bool) -> Vec<String> {
        let skip = self.find_only.max(usize::from(ready_first));
        self.ready.iter().skip(skip).cloned().collect()
    }

    /// Nothing to ask and nothing to signal: no sidecar to deal with.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
            && self.quit.is_empty()
            && self.notify.is_empty()
            && self.executables.is_empty()
    }
}

/// A quit endpoint, and what to tell the user when it refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuitUrl {
    pub url: String,
    /// Said once when the endpoint answers with a refusal (Linkerd's needs an annotation).
    pub on_refusal: Option<&'static str>,
}

/// The sidecar this run deals with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sidecar {
    /// None: no wait, no quit.
    Absent,
    /// This one, known in advance.
    Known(Endpoints),
    /// Whichever of `candidates` answers first, looked for up to `look_for`; when none was
    /// found, `all` is what a quit tries (every candidate's, each once).
    Search {
        candidates: Vec<Endpoints>,
        look_for: Duration,
        all: Endpoints,
    },
}

impl Sidecar {
    /// What to quit without having waited (a usage error, `meshinit quit`, a signal).
    pub fn to_quit(&self) -> Endpoints {
        match self {
            Sidecar::Absent => Endpoints::default(),
            Sidecar::Known(endpoints) => endpoints.clone(),
            Sidecar::Search { all, .. } => all.clone(),
        }
    }
}
