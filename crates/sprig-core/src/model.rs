//! The domain's plain values: what a journal entry, a child or a member of staff is.

use crate::ids::{
    ChildId, EntryId, GroupId, ParentId, ReplyId, RoomId, Sha256, StaffId, Timestamp,
};

macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $var),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The stable text form used in documents, indexes and on the wire.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }

            /// Parses the text form.
            ///
            /// # Errors
            /// [`crate::UnknownValue`] for any other text.
            pub fn parse(s: &str) -> Result<Self, crate::UnknownValue> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err(crate::UnknownValue { what: $what, value: s.chars().take(64).collect() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A text value was not one of the known names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a known {what}")]
pub struct UnknownValue {
    /// What was being parsed (e.g. "area of learning").
    pub what: &'static str,
    /// The rejected text, shortened.
    pub value: String,
}

str_enum!(
    /// The EYFS areas of learning: three prime areas, then four specific ones.
    Area, "area of learning" {
        /// Prime: communication and language.
        CommunicationAndLanguage => "communication-and-language",
        /// Prime: physical development.
        PhysicalDevelopment => "physical-development",
        /// Prime: personal, social and emotional development.
        PersonalSocialEmotional => "personal-social-emotional",
        /// Specific: literacy.
        Literacy => "literacy",
        /// Specific: mathematics.
        Mathematics => "mathematics",
        /// Specific: understanding the world.
        UnderstandingTheWorld => "understanding-the-world",
        /// Specific: expressive arts and design.
        ExpressiveArtsAndDesign => "expressive-arts-and-design",
    }
);

impl Area {
    /// Whether this is one of the three prime areas.
    #[must_use]
    pub fn is_prime(self) -> bool {
        matches!(
            self,
            Area::CommunicationAndLanguage
                | Area::PhysicalDevelopment
                | Area::PersonalSocialEmotional
        )
    }
}

impl Area {
    /// The short form staff write on paper and type at the command line: `CL`, `PD`, `PSED`,
    /// `L`, `M`, `UW`, `EAD`.
    #[must_use]
    pub fn short(self) -> &'static str {
        match self {
            Area::CommunicationAndLanguage => "CL",
            Area::PhysicalDevelopment => "PD",
            Area::PersonalSocialEmotional => "PSED",
            Area::Literacy => "L",
            Area::Mathematics => "M",
            Area::UnderstandingTheWorld => "UW",
            Area::ExpressiveArtsAndDesign => "EAD",
        }
    }

    /// Parses either the text form ([`Self::as_str`]) or the short form ([`Self::short`], any
    /// case).
    ///
    /// # Errors
    /// [`UnknownValue`] for anything else.
    pub fn parse_any(s: &str) -> Result<Area, UnknownValue> {
        Area::parse(s).or_else(|e| {
            Area::ALL
                .iter()
                .copied()
                .find(|a| a.short().eq_ignore_ascii_case(s.trim()))
                .ok_or(e)
        })
    }
}

str_enum!(
    /// The Development Matters age band an observation is assessed against.
    AgeBand, "age band" {
        /// Birth to three.
        BirthToThree => "birth-to-three",
        /// 3 and 4-year-olds.
        ThreeAndFour => "three-and-four-year-olds",
        /// Children in reception.
        Reception => "reception",
    }
);

str_enum!(
    /// The EYFS characteristics of effective learning.
    Characteristic, "characteristic of effective learning" {
        /// Playing and exploring.
        PlayingAndExploring => "playing-and-exploring",
        /// Active learning.
        ActiveLearning => "active-learning",
        /// Creating and thinking critically.
        CreatingAndThinkingCritically => "creating-and-thinking-critically",
    }
);

str_enum!(
    /// What kind of media a reference points to.
    MediaKind, "media kind" {
        /// A still photo (processed JPEG).
        Photo => "photo",
        /// A video, stored as recorded.
        Video => "video",
    }
);

str_enum!(
    /// Staff roles.
    Role, "role" {
        /// Records observations for any child.
        Practitioner => "practitioner",
        /// Also enrols devices, approves contributions, sees management views.
        Manager => "manager",
    }
);

str_enum!(
    /// Whether a child's photo may appear in other children's journals.
    Consent, "photo consent answer" {
        /// The parent has not answered yet; no parent may be linked until they do.
        NotAsked => "not-asked",
        /// The child may appear in group photos.
        Yes => "yes",
        /// The child must not appear in other children's journals.
        No => "no",
    }
);

str_enum!(
    /// Whether a child still attends.
    ChildStatus, "child status" {
        /// Attends; observations may be recorded.
        Active => "active",
        /// Has left; the journal is kept for the retention period, then erased.
        Left => "left",
    }
);

str_enum!(
    /// Whether an entry is a staff observation or a parent's contribution from home.
    EntryKind, "entry kind" {
        /// Recorded by staff.
        Observation => "observation",
        /// Sent in by a parent; pending until staff approve it.
        ParentContribution => "parent-contribution",
    }
);

str_enum!(
    /// Where an entry stands. Derived from the document, never stored as one mutable field, so
    /// that concurrent approval and rejection converge to rejection.
    EntryStatus, "entry status" {
        /// A staff observation not yet shown to parents.
        Draft => "draft",
        /// Part of the journal: parents of the child see it.
        Published => "published",
        /// A parent contribution awaiting staff review.
        Pending => "pending",
        /// A parent contribution staff turned down; never part of the journal.
        Rejected => "rejected",
    }
);

/// Who wrote an entry or a reply.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Author {
    /// A member of staff.
    Staff(StaffId),
    /// A parent or relative.
    Parent(ParentId),
}

impl Author {
    /// `"staff"` or `"parent"`.
    #[must_use]
    pub fn kind_str(&self) -> &'static str {
        match self {
            Author::Staff(_) => "staff",
            Author::Parent(_) => "parent",
        }
    }

    /// The author's id as text.
    #[must_use]
    pub fn id_str(&self) -> &str {
        match self {
            Author::Staff(s) => s.as_str(),
            Author::Parent(p) => p.as_str(),
        }
    }

    /// Rebuilds an author from [`Self::kind_str`] and [`Self::id_str`].
    ///
    /// # Errors
    /// [`UnknownValue`] for an unknown kind or a malformed id.
    pub fn from_parts(kind: &str, id: &str) -> Result<Self, UnknownValue> {
        let bad = || UnknownValue {
            what: "author",
            value: format!("{kind}:{id}"),
        };
        match kind {
            "staff" => StaffId::parse(id).map(Author::Staff).map_err(|_| bad()),
            "parent" => ParentId::parse(id).map(Author::Parent).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// A photo or video referenced by an entry. The bytes live in the device vault or the server's
/// media store, never inside a document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaRef {
    /// SHA-256 of the stored bytes (the processed photo, or the video as recorded).
    pub sha256: Sha256,
    /// Photo or video.
    pub kind: MediaKind,
    /// MIME type, e.g. `image/jpeg`, `video/mp4`.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Width in pixels (0 when unknown, e.g. video).
    pub width: u32,
    /// Height in pixels (0 when unknown).
    pub height: u32,
}

/// A reply under an entry. Replies never stand alone: Sprig is not a messaging system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The reply's id.
    pub id: ReplyId,
    /// Who wrote it.
    pub author: Author,
    /// When it was written.
    pub created_at: Timestamp,
    /// What it says.
    pub text: String,
}

/// One entry of a child's journal, as materialised from the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's id (shared by the copies of a group observation).
    pub id: EntryId,
    /// The child whose journal holds this copy.
    pub child: ChildId,
    /// Staff observation or parent contribution.
    pub kind: EntryKind,
    /// Set when the same observation was written for several children.
    pub group: Option<GroupId>,
    /// Who recorded it.
    pub author: Author,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// The observation text (its latest revision when edited).
    pub text: String,
    /// EYFS areas of learning, sorted.
    pub areas: Vec<Area>,
    /// The Development Matters age band, when one was chosen.
    pub band: Option<AgeBand>,
    /// Characteristics of effective learning, sorted.
    pub characteristics: Vec<Characteristic>,
    /// Planned next steps (from the latest revision when edited).
    pub next_steps: String,
    /// Attached photos and videos, in capture order.
    pub media: Vec<MediaRef>,
    /// Draft, published, pending or rejected.
    pub status: EntryStatus,
    /// Replies, oldest first.
    pub replies: Vec<Reply>,
    /// When the text was last edited after creation.
    pub edited_at: Option<Timestamp>,
}

/// One correction of an entry's text, kept as written (see `Journal::revisions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRevision {
    /// The member of staff who made it.
    pub by: StaffId,
    /// When it was made.
    pub at: Timestamp,
    /// The text as corrected.
    pub text: String,
    /// The next steps as corrected.
    pub next_steps: String,
}

/// A member of staff as the roster holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staff {
    /// The staff member's id.
    pub id: StaffId,
    /// Display name.
    pub name: String,
    /// Practitioner or manager.
    pub role: Role,
    /// Whether they may still use the system.
    pub active: bool,
    /// Argon2id hash (PHC string) of their tablet PIN, when one is set.
    pub pin_hash: Option<String>,
}

/// A child as the roster holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// The child's id.
    pub id: ChildId,
    /// Display name.
    pub name: String,
    /// Date of birth, `YYYY-MM-DD`, when known.
    pub date_of_birth: Option<String>,
    /// Their key worker.
    pub key_worker: StaffId,
    /// Their room, if assigned.
    pub room: Option<RoomId>,
    /// Photo consent for appearing in other children's journals.
    pub photo_consent: Consent,
    /// Attending or left.
    pub status: ChildStatus,
    /// The day they leave (or left), `YYYY-MM-DD`, when a manager has recorded one.
    pub leaving: Option<String>,
}

/// A parent or relative as the roster holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    /// The parent's id.
    pub id: ParentId,
    /// Display name.
    pub name: String,
    /// The children whose journals they may see, sorted.
    pub children: Vec<ChildId>,
}

/// A room of the setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// The room's id.
    pub id: RoomId,
    /// Display name.
    pub name: String,
}
