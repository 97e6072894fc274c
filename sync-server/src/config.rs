//! The server's configuration file (`sprig-server serve --config FILE`, or `SPRIG_CONFIG`):
//! TOML, every key optional. What `serve` uses is, key by key, the command-line flag, else its
//! environment variable (`SPRIG_` and the key in capitals: `SPRIG_LISTEN`), else the file,
//! else the default. An unknown key or a value of the wrong kind is refused with the file, the
//! line and what was expected, so a typo never silently falls back to a default.
//!
//! ```toml
//! data = "/var/lib/sprig"                # one setting on SQLite, or:
//! # database_url = "postgres://sprig@db/sprig"
//! # media = "s3://sprig-media"           # or a folder
//! # s3_endpoint = "https://s3.example.net"
//! # s3_region = "eu-west-2"
//! listen = "0.0.0.0:8443"
//! public_url = "https://sprig.acorns.example:8443"
//!
//! [limits]
//! max_media_mb = 512
//! max_contribution_mb = 100
//! enrol_failures_per_ip = 5
//! enrol_failures_global = 50
//! portal_idle = "30m"
//! portal_absolute = "7d"
//! console_idle = "15m"                   # a manager's session in the console
//! console_absolute = "8h"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ServeConfig;
use crate::policy::parse_duration;

/// The contents of a configuration file.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// A data directory (one setting, SQLite).
    pub data: Option<PathBuf>,
    /// Or a hosted deployment's database.
    pub database_url: Option<String>,
    /// Where media is kept: a folder or `s3://BUCKET[/PREFIX]`.
    pub media: Option<String>,
    /// The S3 endpoint; left out for AWS.
    pub s3_endpoint: Option<String>,
    /// The S3 region.
    pub s3_region: Option<String>,
    /// The address to listen on.
    pub listen: Option<String>,
    /// The address devices and browsers reach the server at.
    pub public_url: Option<String>,
    /// Tuning.
    #[serde(default)]
    pub limits: Limits,
}

/// The `[limits]` table.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest media upload accepted, in MB (1 MB = 1,048,576 bytes).
    pub max_media_mb: Option<u64>,
    /// Largest contribution a parent may upload (text, photos and videos together), in MB.
    pub max_contribution_mb: Option<u64>,
    /// Refused enrolment attempts allowed per source address per minute.
    pub enrol_failures_per_ip: Option<usize>,
    /// Refused enrolment attempts allowed in total per minute.
    pub enrol_failures_global: Option<usize>,
    /// A portal session ends after this long without a request (`30m`).
    pub portal_idle: Option<String>,
    /// A portal session ends this long after sign-in (`7d`).
    pub portal_absolute: Option<String>,
    /// A manager's console session ends after this long without a request (`15m`).
    pub console_idle: Option<String>,
    /// A manager's console session ends this long after sign-in (`8h`).
    pub console_absolute: Option<String>,
}

/// The configuration file could not be used.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not valid, with where and why.
    #[error("the configuration file {path} is not valid: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column.
        detail: String,
    },
}

impl ConfigFile {
    /// Reads and checks `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when it cannot be read, [`ConfigError::Invalid`] when it is not
    /// TOML, has an unknown key, a value of the wrong kind, or a limit that does not parse.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file = ConfigFile::parse(&text).map_err(|detail| ConfigError::Invalid {
            path: path.to_owned(),
            detail,
        })?;
        Ok(file)
    }

    /// Parses and checks a file's text; the error is the sentence to show.
    ///
    /// # Errors
    /// What is wrong, with its line for a TOML error.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        // Check the limits now, so a bad one is refused at start with the file named.
        file.apply(&mut ServeConfig::new(crate::DataDir::new("")))?;
        Ok(file)
    }

    /// Applies the `[limits]` table to `config`.
    ///
    /// # Errors
    /// A duration that does not parse, or a zero limit.
    pub fn apply(&self, config: &mut ServeConfig) -> Result<(), String> {
        let l = &self.limits;
        if let Some(mb) = l.max_media_mb {
            if mb == 0 {
                return Err("limits.max_media_mb must be at least 1".into());
            }
            config.max_media_bytes = mb.saturating_mul(1024 * 1024);
        }
        if let Some(mb) = l.max_contribution_mb {
            if mb == 0 {
                return Err("limits.max_contribution_mb must be at least 1".into());
            }
            config.max_contribution_bytes = mb.saturating_mul(1024 * 1024);
        }
        if let Some(n) = l.enrol_failures_per_ip {
            config.enrol_failures_per_ip = n;
        }
        if let Some(n) = l.enrol_failures_global {
            config.enrol_failures_global = n;
        }
        let duration = |key: &str, v: &str| {
            parse_duration(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!(
                        "limits.{key} = {v:?} is not a duration such as \"30m\", \"8h\" or \"7d\""
                    )
                })
        };
        if let Some(v) = &l.portal_idle {
            config.portal_idle = duration("portal_idle", v)?;
        }
        if let Some(v) = &l.portal_absolute {
            config.portal_absolute = duration("portal_absolute", v)?;
        }
        if let Some(v) = &l.console_idle {
            config.console_idle = duration("console_idle", v)?;
        }
        if let Some(v) = &l.console_absolute {
            config.console_absolute = duration("console_absolute", v)?;
        }
        Ok(())
    }
}

/// One setting: the flag's value, else the environment variable `var`, else the file's.
#[must_use]
pub fn pick<T: From<String>>(flag: Option<T>, var: &str, file: Option<T>) -> Option<T> {
    flag.or_else(|| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(T::from)
    })
    .or(file)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_file_parses_and_applies() {
        let f = ConfigFile::parse(
            "data = \"/var/lib/sprig\"\nlisten = \"0.0.0.0:8443\"\n\
             [limits]\nmax_media_mb = 64\nmax_contribution_mb = 20\nportal_idle = \"15m\"\nportal_absolute = \"8h\"\nconsole_idle = \"10m\"\nconsole_absolute = \"4h\"\n",
        )
        .unwrap();
        assert_eq!(f.data.as_deref(), Some(Path::new("/var/lib/sprig")));
        let mut c = ServeConfig::new(crate::DataDir::new(""));
        f.apply(&mut c).unwrap();
        assert_eq!(c.max_media_bytes, 64 * 1024 * 1024);
        assert_eq!(c.max_contribution_bytes, 20 * 1024 * 1024);
        assert_eq!(c.portal_idle, Duration::from_secs(900));
        assert_eq!(c.portal_absolute, Duration::from_secs(8 * 3600));
        assert_eq!(c.console_idle, Duration::from_secs(600));
        assert_eq!(c.console_absolute, Duration::from_secs(4 * 3600));
        assert_eq!(ConfigFile::parse("").unwrap(), ConfigFile::default());
    }

    #[test]
    fn the_shipped_example_parses() {
        let f = ConfigFile::parse(include_str!("../../deploy/server.toml")).unwrap();
        assert_eq!(f.listen.as_deref(), Some("0.0.0.0:8443"));
        assert_eq!(f.limits.portal_idle.as_deref(), Some("30m"));
    }

    #[test]
    fn typos_and_bad_values_are_refused_with_where() {
        let e = ConfigFile::parse("lisen = \"0.0.0.0:1\"\n").unwrap_err();
        assert!(e.contains("lisen") && e.contains("line 1"), "{e}");
        let e = ConfigFile::parse("[limits]\nmax_media_mb = \"big\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = ConfigFile::parse("[limits]\nportal_idle = \"soon\"\n").unwrap_err();
        assert!(e.contains("portal_idle") && e.contains("30m"), "{e}");
        let e = ConfigFile::parse("[limits]\nmax_media_mb = 0\n").unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
    }
}
