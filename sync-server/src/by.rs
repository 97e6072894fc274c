//! Who asked for an admin operation, for the audit log.

/// Who asked for an admin operation: `admin` (the CLI on the server machine) or
/// `staff:<id>` (a manager in the console), and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct By {
    /// The audit actor: `admin` or `staff:<id>`.
    pub actor: String,
    /// The client: the console's remote address and user agent; `None` for the CLI.
    pub client: Option<String>,
}

impl By {
    /// The CLI on the server machine.
    #[must_use]
    pub fn cli() -> By {
        By {
            actor: "admin".to_owned(),
            client: None,
        }
    }

    /// The server itself, on a schedule (a leaving date come).
    #[must_use]
    pub fn server() -> By {
        By {
            actor: "server".to_owned(),
            client: None,
        }
    }
}
