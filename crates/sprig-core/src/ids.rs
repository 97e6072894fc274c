//! Identifiers, time and content hashes.

use std::fmt;

/// An identifier was not in the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {kind} id")]
pub struct IdError {
    /// What kind of identifier was expected (e.g. "child").
    pub kind: &'static str,
    /// The rejected text, shortened.
    pub value: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// A fresh random identifier (UUID v4, hyphenated lower-case).
            #[must_use]
            pub fn new_random() -> Self {
                Self(uuid::Uuid::new_v4().hyphenated().to_string())
            }

            /// Parses an identifier, accepting only a hyphenated UUID.
            ///
            /// # Errors
            /// [`IdError`] when `s` is not a UUID.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                match uuid::Uuid::try_parse(s) {
                    Ok(u) => Ok(Self(u.hyphenated().to_string())),
                    Err(_) => Err(IdError {
                        kind: $kind,
                        value: s.chars().take(64).collect(),
                    }),
                }
            }

            /// The identifier as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// A child on the setting's roster.
    ChildId,
    "child"
);
id_type!(
    /// A member of staff (practitioner or manager).
    StaffId,
    "staff"
);
id_type!(
    /// A parent or relative linked to one or more children.
    ParentId,
    "parent"
);
id_type!(
    /// A room of the setting.
    RoomId,
    "room"
);
id_type!(
    /// An entry (observation or parent contribution) in a child's journal.
    EntryId,
    "entry"
);
id_type!(
    /// A reply attached to an entry.
    ReplyId,
    "reply"
);
id_type!(
    /// The shared id of one group observation written into several children's journals.
    GroupId,
    "group"
);

impl ChildId {
    /// The 16 bytes of the UUID (every constructor validated the UUID form).
    pub(crate) fn uuid_bytes(&self) -> [u8; 16] {
        uuid::Uuid::parse_str(&self.0)
            .map(|u| *u.as_bytes())
            .unwrap_or_default()
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// The core never reads a clock; callers pass the time in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub fn millis(self) -> i64 {
        self.0
    }

    /// RFC 3339 UTC text with exactly three fractional digits, e.g. `2026-11-29T12:00:00.120Z`
    /// (fixed width, so the text sorts as the time does).
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let (days, ms) = (self.0.div_euclid(86_400_000), self.0.rem_euclid(86_400_000));
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
    }
}

/// The SHA-256 of a media file; media are referenced by it, never embedded in documents.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// Wraps 32 raw bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// [`IdError`] when `s` is not 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, IdError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| IdError {
            kind: "sha256",
            value: s.chars().take(80).collect(),
        })?;
        Ok(Self(out))
    }

    /// Lower-case hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let c = ChildId::new_random();
        assert_eq!(ChildId::parse(c.as_str()).unwrap(), c);
        let e = ChildId::parse("robert'); drop table").unwrap_err();
        assert_eq!(e.kind, "child");
        assert!(e.to_string().contains("not a valid child id"));
    }

    #[test]
    fn timestamps_format_as_fixed_width_rfc3339() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_764_417_457_220).to_rfc3339(),
            "2025-11-29T11:57:37.220Z"
        );
        assert_eq!(
            Timestamp(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(Timestamp(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            Timestamp(4_102_444_799_999).to_rfc3339(),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn sha_hex_round_trip() {
        let s = Sha256::from_bytes([7; 32]);
        assert_eq!(Sha256::from_hex(&s.to_hex()).unwrap(), s);
        assert!(Sha256::from_hex("abc").is_err());
        assert!(Sha256::from_hex(&"zz".repeat(32)).is_err());
    }
}
