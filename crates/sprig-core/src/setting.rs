//! The setting document: the setting's name and the policy values devices enforce.

use automerge::ROOT;

use crate::doc::{
    Doc, DocError, SCHEMA_VERSION, ensure_map, get_bool, get_obj, get_str, get_u64, put_bool,
    put_i64, put_map, put_str,
};
use crate::ids::Timestamp;
use crate::rules::RuleError;

/// Policy values set per setting. Defaults follow common mobile app-protection policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policies {
    /// A device that has not checked in for this long refuses to unlock until it syncs.
    pub lock_after_secs: u64,
    /// A device that has not checked in for this long wipes itself.
    pub wipe_after_secs: u64,
    /// Wrong PINs in a row before the device locks until it syncs.
    pub max_pin_failures: u32,
    /// The tablet locks after this much inactivity.
    pub inactivity_lock_secs: u64,
    /// Days a leaver's journal is kept before erasure.
    pub retention_days: u32,
    /// Keep a small encrypted thumbnail on the device after the photo is purged.
    pub keep_thumbnails: bool,
    /// A child with no observation for this many days is marked on the tablet and in coverage.
    pub not_observed_days: u32,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            lock_after_secs: 12 * 3600,
            wipe_after_secs: 90 * 24 * 3600,
            max_pin_failures: 10,
            inactivity_lock_secs: 120,
            retention_days: 3 * 365,
            keep_thumbnails: true,
            not_observed_days: 14,
        }
    }
}

/// The setting document.
#[derive(Debug, Clone)]
pub struct SettingDoc {
    doc: Doc,
}

impl SettingDoc {
    /// A new setting with default policies.
    #[must_use]
    pub fn new(name: &str) -> SettingDoc {
        let defaults = Policies::default();
        let doc = Doc::genesis(b"sprig-setting", |am| {
            put_str(am, &ROOT, "kind", "setting")?;
            put_i64(am, &ROOT, "schema", SCHEMA_VERSION)?;
            put_map(am, &ROOT, "policies")?;
            Ok(())
        });
        let mut s = SettingDoc { doc };
        // Name and defaults are a second change: two settings must not share one genesis.
        s.set(name, &defaults, Timestamp(0))
            .expect("writing a fresh document");
        s
    }

    /// Loads a setting snapshot plus any incremental chunks.
    ///
    /// # Errors
    /// [`DocError`] when the bytes are not a setting document this version understands.
    pub fn load(bytes: &[u8]) -> Result<SettingDoc, DocError> {
        let doc = Doc::load(bytes)?;
        doc.check_kind("setting")?;
        Ok(SettingDoc { doc })
    }

    crate::doc::doc_methods!();

    /// The setting's name.
    #[must_use]
    pub fn name(&self) -> String {
        get_str(&self.doc.am, &ROOT, "name").unwrap_or_default()
    }

    /// The policy values in force (defaults for any not set).
    #[must_use]
    pub fn policies(&self) -> Policies {
        let d = &self.doc.am;
        let def = Policies::default();
        let Some(p) = get_obj(d, &ROOT, "policies") else {
            return def;
        };
        Policies {
            lock_after_secs: get_u64(d, &p, "lock_after_secs").unwrap_or(def.lock_after_secs),
            wipe_after_secs: get_u64(d, &p, "wipe_after_secs").unwrap_or(def.wipe_after_secs),
            max_pin_failures: get_u64(d, &p, "max_pin_failures")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(def.max_pin_failures),
            inactivity_lock_secs: get_u64(d, &p, "inactivity_lock_secs")
                .unwrap_or(def.inactivity_lock_secs),
            retention_days: get_u64(d, &p, "retention_days")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(def.retention_days),
            keep_thumbnails: get_bool(d, &p, "keep_thumbnails").unwrap_or(def.keep_thumbnails),
            not_observed_days: get_u64(d, &p, "not_observed_days")
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(def.not_observed_days),
        }
    }

    /// Sets the name and policies.
    ///
    /// # Errors
    /// [`RuleError::InvalidPolicy`] when `lock_after` is not shorter than `wipe_after`, or a value
    /// is zero.
    pub fn set(&mut self, name: &str, p: &Policies, at: Timestamp) -> Result<(), RuleError> {
        if p.lock_after_secs == 0
            || p.wipe_after_secs == 0
            || p.max_pin_failures == 0
            || p.inactivity_lock_secs == 0
            || p.not_observed_days == 0
        {
            return Err(RuleError::InvalidPolicy(
                "every duration and limit must be greater than zero",
            ));
        }
        if p.lock_after_secs >= p.wipe_after_secs {
            return Err(RuleError::InvalidPolicy(
                "lock-after must be shorter than wipe-after",
            ));
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(RuleError::InvalidName);
        }
        let big = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let am = &mut self.doc.am;
        let w = |am: &mut automerge::AutoCommit| -> crate::doc::AmResult {
            put_str(am, &ROOT, "name", name)?;
            let o = ensure_map(am, &ROOT, "policies")?;
            put_i64(am, &o, "lock_after_secs", big(p.lock_after_secs))?;
            put_i64(am, &o, "wipe_after_secs", big(p.wipe_after_secs))?;
            put_i64(am, &o, "max_pin_failures", i64::from(p.max_pin_failures))?;
            put_i64(am, &o, "inactivity_lock_secs", big(p.inactivity_lock_secs))?;
            put_i64(am, &o, "retention_days", i64::from(p.retention_days))?;
            put_bool(am, &o, "keep_thumbnails", p.keep_thumbnails)?;
            put_i64(am, &o, "not_observed_days", i64::from(p.not_observed_days))
        };
        w(am).map_err(|e| RuleError::Document(DocError::from(e)))?;
        self.doc.commit(at.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_and_are_validated() {
        let mut s = SettingDoc::new("Acorn Pre-School");
        assert_eq!(s.policies(), Policies::default());
        let p = Policies {
            lock_after_secs: 90,
            wipe_after_secs: 600,
            ..Policies::default()
        };
        s.set("Acorn Pre-School", &p, Timestamp(5)).unwrap();
        let loaded = SettingDoc::load(&s.save()).unwrap();
        assert_eq!(loaded.policies(), p);
        assert_eq!(loaded.name(), "Acorn Pre-School");
        let bad = Policies {
            lock_after_secs: 600,
            wipe_after_secs: 600,
            ..p
        };
        assert!(matches!(
            s.set("x", &bad, Timestamp(6)),
            Err(RuleError::InvalidPolicy(_))
        ));
    }
}
