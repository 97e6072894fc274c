//! The setting's device policy: the offline lease (`lock_after`, `wipe_after`), the wrong-PIN
//! limit, and the optional network allow-list for device sync. Stored in the server database
//! (not in the replicated setting document, so no device can change it) and read afresh for
//! every session and request, so `sprig-server policy set` takes effect without a restart.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{ServerStore, StoreError};

/// The meta key the policy is stored under, as JSON.
const META_KEY: &str = "device_policy";

/// A policy value is not acceptable.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A duration is not written like `90s`, `15m`, `12h` or `90d`.
    #[error("'{0}' is not a duration like 90s, 15m, 12h or 90d")]
    BadDuration(String),
    /// A network is not written like `192.168.1.0/24` or `fd00::/8`.
    #[error("'{0}' is not a network like 192.168.1.0/24, 10.0.0.5 or fd00::/8")]
    BadNetwork(String),
    /// The values do not fit together (zero, lock after wipe, …).
    #[error("{0}")]
    Invalid(String),
    /// The stored policy could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a duration such as `90s`, `15m`, `12h`, `90d` (a bare number is seconds).
///
/// # Errors
/// [`PolicyError::BadDuration`].
pub fn parse_duration(s: &str) -> Result<Duration, PolicyError> {
    let t = s.trim();
    let bad = || PolicyError::BadDuration(s.to_owned());
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).map(Duration::from_secs).ok_or_else(bad)
}

/// Writes seconds in the largest unit that divides them exactly: `43200` → `12h`.
#[must_use]
pub fn format_duration(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// An IP network: an address and a prefix length (`10.1.0.0/16`; a bare address is one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network. An IPv4 address seen as IPv4-mapped IPv6
    /// (`::ffff:10.0.0.1`, as a dual-stack listener reports it) counts as IPv4.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Cidr, PolicyError> {
        let bad = || PolicyError::BadNetwork(s.to_owned());
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let addr = IpAddr::from_str(addr).map_err(|_| bad())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The setting's device policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// A device that has not checked in for this long refuses to unlock until it syncs.
    pub lock_after_secs: u64,
    /// A device that has not checked in for this long wipes itself.
    pub wipe_after_secs: u64,
    /// Wrong PINs in a row after which a device locks until it syncs.
    pub max_pin_failures: u32,
    /// Networks device sync is allowed from; empty allows any.
    pub allow_networks: Vec<Cidr>,
}

impl Default for Policy {
    /// Common mobile app-protection defaults: lock after 12 hours, wipe after 90 days, 10
    /// wrong PINs, any network.
    fn default() -> Policy {
        Policy {
            lock_after_secs: 12 * 3600,
            wipe_after_secs: 90 * 86_400,
            max_pin_failures: 10,
            allow_networks: Vec::new(),
        }
    }
}

/// What `policy set` changes; `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyChange {
    /// New `lock_after`.
    pub lock_after: Option<Duration>,
    /// New `wipe_after`.
    pub wipe_after: Option<Duration>,
    /// New wrong-PIN limit.
    pub max_pin_failures: Option<u32>,
    /// New allow-list (an empty list allows any network).
    pub allow_networks: Option<Vec<Cidr>>,
}

impl Policy {
    /// The stored policy, or the defaults when none was ever set.
    ///
    /// # Errors
    /// [`PolicyError::Store`], also for a stored value that does not parse.
    pub fn load(store: &dyn ServerStore) -> Result<Policy, PolicyError> {
        match store.meta(META_KEY)? {
            None => Ok(Policy::default()),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                PolicyError::Store(StoreError::Corrupt(format!("the device policy: {e}")))
            }),
        }
    }

    /// Checks the values, then stores them.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`], [`PolicyError::Store`].
    pub fn save(&self, store: &dyn ServerStore) -> Result<(), PolicyError> {
        self.check()?;
        let json = serde_json::to_string(self)
            .map_err(|e| PolicyError::Invalid(format!("the policy does not serialise: {e}")))?;
        store.set_meta(META_KEY, &json)?;
        Ok(())
    }

    /// The policy with `change` applied, checked.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`].
    pub fn with(&self, change: &PolicyChange) -> Result<Policy, PolicyError> {
        let p = Policy {
            lock_after_secs: change
                .lock_after
                .map_or(self.lock_after_secs, |d| d.as_secs()),
            wipe_after_secs: change
                .wipe_after
                .map_or(self.wipe_after_secs, |d| d.as_secs()),
            max_pin_failures: change.max_pin_failures.unwrap_or(self.max_pin_failures),
            allow_networks: change
                .allow_networks
                .clone()
                .unwrap_or_else(|| self.allow_networks.clone()),
        };
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), PolicyError> {
        if self.lock_after_secs == 0 || self.wipe_after_secs == 0 {
            return Err(PolicyError::Invalid(
                "lock-after and wipe-after must be at least 1s".into(),
            ));
        }
        if self.lock_after_secs >= self.wipe_after_secs {
            return Err(PolicyError::Invalid(format!(
                "lock-after ({}) must be shorter than wipe-after ({}); set both if needed",
                format_duration(self.lock_after_secs),
                format_duration(self.wipe_after_secs)
            )));
        }
        if self.max_pin_failures == 0 {
            return Err(PolicyError::Invalid(
                "max-pin-failures must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Whether device sync from `ip` is allowed.
    #[must_use]
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_networks.is_empty() || self.allow_networks.iter().any(|n| n.contains(ip))
    }
}

/// What `policy set` and `policy show` print.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyOutput {
    /// `lock_after` as written on the command line (`12h`).
    pub lock_after: String,
    /// `lock_after` in seconds.
    pub lock_after_secs: u64,
    /// `wipe_after` as written on the command line (`90d`).
    pub wipe_after: String,
    /// `wipe_after` in seconds.
    pub wipe_after_secs: u64,
    /// Wrong PINs before a device locks until it syncs.
    pub max_pin_failures: u32,
    /// Networks device sync is allowed from; empty allows any.
    pub allow_networks: Vec<String>,
}

impl From<&Policy> for PolicyOutput {
    fn from(p: &Policy) -> PolicyOutput {
        PolicyOutput {
            lock_after: format_duration(p.lock_after_secs),
            lock_after_secs: p.lock_after_secs,
            wipe_after: format_duration(p.wipe_after_secs),
            wipe_after_secs: p.wipe_after_secs,
            max_pin_failures: p.max_pin_failures,
            allow_networks: p.allow_networks.iter().map(ToString::to_string).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[test]
    fn durations_are_written_like_90s_12h_90d() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("15m").unwrap().as_secs(), 900);
        assert_eq!(parse_duration("12h").unwrap().as_secs(), 43_200);
        assert_eq!(parse_duration("90d").unwrap().as_secs(), 7_776_000);
        assert_eq!(parse_duration("7").unwrap().as_secs(), 7);
        for bad in ["", "h", "12 h", "1w", "-5s", "99999999999999999999d"] {
            assert!(
                matches!(parse_duration(bad), Err(PolicyError::BadDuration(_))),
                "{bad}"
            );
        }
        for s in ["90s", "15m", "12h", "90d", "61s"] {
            assert_eq!(
                format_duration(parse_duration(s).unwrap().as_secs()),
                s,
                "{s}"
            );
        }
    }

    #[test]
    fn networks_match_by_prefix() {
        let lan: Cidr = "192.168.1.0/24".parse().unwrap();
        assert!(lan.contains("192.168.1.77".parse().unwrap()));
        assert!(!lan.contains("192.168.2.1".parse().unwrap()));
        // Dual-stack listeners report IPv4 peers as mapped IPv6 addresses.
        assert!(lan.contains("::ffff:192.168.1.9".parse().unwrap()));
        assert!(!lan.contains("fd00::1".parse().unwrap()));
        let host: Cidr = "10.0.0.5".parse().unwrap();
        assert_eq!(host.to_string(), "10.0.0.5/32");
        assert!(host.contains("10.0.0.5".parse().unwrap()));
        assert!(!host.contains("10.0.0.6".parse().unwrap()));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("203.0.113.1".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12:3456::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "fd00::/129",
            "10.0.0.0/",
            "x/8",
            "1.2.3.4/+8",
        ] {
            assert!(
                matches!(bad.parse::<Cidr>(), Err(PolicyError::BadNetwork(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn policy_defaults_changes_and_checks() {
        let store = SqliteStore::open_in_memory().unwrap();
        let p = Policy::load(&store).unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(
            (p.lock_after_secs, p.wipe_after_secs, p.max_pin_failures),
            (43_200, 7_776_000, 10)
        );
        assert!(p.allows("203.0.113.9".parse().unwrap()));

        let change = PolicyChange {
            lock_after: Some(Duration::from_secs(2)),
            wipe_after: Some(Duration::from_secs(60)),
            max_pin_failures: Some(3),
            allow_networks: Some(vec!["127.0.0.0/8".parse().unwrap()]),
        };
        let q = p.with(&change).unwrap();
        q.save(&store).unwrap();
        let r = Policy::load(&store).unwrap();
        assert_eq!(r, q);
        assert!(r.allows("127.0.0.1".parse().unwrap()));
        assert!(!r.allows("10.1.1.1".parse().unwrap()));

        let e = r
            .with(&PolicyChange {
                lock_after: Some(Duration::from_secs(60)),
                ..PolicyChange::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("shorter than wipe-after"), "{e}");
        assert!(
            r.with(&PolicyChange {
                max_pin_failures: Some(0),
                ..PolicyChange::default()
            })
            .is_err()
        );
        // Clearing the list allows any network again.
        let open = r
            .with(&PolicyChange {
                allow_networks: Some(Vec::new()),
                ..PolicyChange::default()
            })
            .unwrap();
        assert!(open.allows("10.1.1.1".parse().unwrap()));
    }
}
