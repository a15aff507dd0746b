//! The admission policies' refusals (images/examples/policy/), as both policies word them:
//! the offline tests (tests/policy.rs) and the cluster's (tests/cluster/policy.rs) expect
//! the same text, so a change of the policies' wording is made here once.

/// The refusal of a labelled container `task` without `command`.
pub const NO_COMMAND: &str = "meshinit.io/inject: container \"task\" has no command, so \
    meshinit cannot be put in front of it (its image's ENTRYPOINT would run, which an \
    admission policy cannot see): set its command to the image's ENTRYPOINT and, if it has \
    no args, its args to the image's CMD";

/// The end of a clash's refusal, after the field that clashes.
pub const ADDS: &str = ", which meshinit adds too (the volume meshinit-bin, the init \
    container install-meshinit, a mount at /meshinit-bin; with two or more task containers \
    also the volume meshinit-pod and a mount at /meshinit-pod): rename the pod's own volume \
    or container, or mount it at another path";
