//! [`Device`]: the store, PIN unlock, capture and queries, all offline.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use sprig_core::{
    Actor, AgeBand, Area, Characteristic, ChildId, Entry, EntryId, Journal, MediaKind, MediaRef,
    NewEntry, Policies, Roster, Sha256, StaffId, Timestamp, plan_entry,
};
use sprig_media::{MediaError, PhotoOptions, VIDEO_SNIFF_LEN};
use sprig_store::{DocId, MediaState, Store, StoreError};
use zeroize::Zeroize;

use crate::dir::DataDir;
use crate::error::{DeviceError, Result};
use crate::lifecycle::{Clock, SystemClock};

/// A device: its data directory and its open encrypted store.
pub struct Device {
    pub(crate) dir: DataDir,
    pub(crate) store: Store,
    /// Where the lease, PIN back-off and timestamps read the time.
    pub(crate) clock: Arc<dyn Clock>,
    /// Set once this process has wiped the store (`wiped at` time).
    pub(crate) wiped: Option<String>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Proof that a member of staff unlocked the device with their PIN. Only [`Device::unlock`]
/// makes one; recording and reading take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlocked {
    staff: StaffId,
}

impl Unlocked {
    /// Who unlocked.
    #[must_use]
    pub fn staff(&self) -> &StaffId {
        &self.staff
    }
}

/// What a key worker records.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// The children it is about (several for a group observation).
    pub children: Vec<ChildId>,
    /// What happened.
    pub text: String,
    /// EYFS areas of learning.
    pub areas: Vec<Area>,
    /// The Development Matters age band, if chosen.
    pub band: Option<AgeBand>,
    /// Characteristics of effective learning.
    pub characteristics: Vec<Characteristic>,
    /// Planned next steps.
    pub next_steps: String,
    /// Photo files (JPEG, PNG, WebP); processed, never stored as given.
    pub photos: Vec<PathBuf>,
    /// Video files (MP4, MOV, WebM); streamed into the vault as recorded.
    pub videos: Vec<PathBuf>,
    /// Photos as bytes in memory (the app's camera or file picker, over IPC): processed like
    /// `photos`, never written anywhere unencrypted.
    pub photo_bytes: Vec<Vec<u8>>,
    /// Videos as bytes in memory (the app's camera): stored as recorded.
    pub video_bytes: Vec<Vec<u8>>,
    /// Keep as a draft, not yet visible to parents.
    pub draft: bool,
}

/// The text is about a child: it never reaches logs.
impl fmt::Debug for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observation")
            .field("children", &self.children)
            .field(
                "text",
                &format_args!("<{} chars>", self.text.chars().count()),
            )
            .field("areas", &self.areas)
            .field("photos", &self.photos.len())
            .field("videos", &self.videos.len())
            .field("photo_bytes", &self.photo_bytes.len())
            .field("video_bytes", &self.video_bytes.len())
            .field("draft", &self.draft)
            .finish_non_exhaustive()
    }
}

/// Where a media item's bytes are, as this device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaStatus {
    /// Only on this device, waiting for upload.
    Captured,
    /// The server acknowledged it; the device copy is about to be purged.
    Uploaded,
    /// Purged from this device after upload (a thumbnail may remain); view it from the server.
    Purged,
    /// Never on this device (recorded elsewhere); the server holds it.
    Remote,
}

impl MediaStatus {
    /// `captured`, `uploaded`, `purged` or `remote`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "captured",
            Self::Uploaded => "uploaded",
            Self::Purged => "purged",
            Self::Remote => "remote",
        }
    }
}

impl From<MediaState> for MediaStatus {
    fn from(s: MediaState) -> Self {
        match s {
            MediaState::Captured => Self::Captured,
            MediaState::Uploaded => Self::Uploaded,
            MediaState::Purged => Self::Purged,
        }
    }
}

/// One media item of a journal entry and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaItem {
    /// The reference from the journal.
    pub media: MediaRef,
    /// Where its bytes are.
    pub status: MediaStatus,
}

/// One entry of a child's journal, as a key worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalItem {
    /// The entry (this child's copy).
    pub entry: Entry,
    /// Every child the observation is about (several for a group observation; staff only).
    pub children: Vec<ChildId>,
    /// Its media, in capture order, with their state on this device.
    pub media: Vec<MediaItem>,
}

/// What the device holds and how far it is from the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Enrolled with a server.
    pub enrolled: bool,
    /// The device id issued at enrolment.
    pub device_id: Option<String>,
    /// The server it syncs with.
    pub server_url: Option<String>,
    /// Photos and videos not yet acknowledged by the server.
    pub pending_media: u64,
    /// Acknowledged but not yet purged.
    pub uploaded_media: u64,
    /// Purged after upload.
    pub purged_media: u64,
    /// Documents changed here that the server has not yet acknowledged.
    pub unsynced_docs: u64,
    /// Wrong PINs not yet reported to the server.
    pub unreported_pin_failures: u64,
    /// Why the device refuses to unlock until it syncs, if it does.
    pub locked: Option<crate::lifecycle::LockReason>,
    /// The server quarantined this device (it refused a change the device sent): nothing new
    /// is recorded until a manager releases it and a sync completes.
    pub quarantined: bool,
    /// The device was wiped: nothing of it remains but the marker.
    pub wiped: bool,
    /// When it was wiped (from the marker).
    pub wiped_at: Option<String>,
    /// When the last sync completed.
    pub last_sync: Option<Timestamp>,
    /// Documents held (roster, setting, journals).
    pub documents: u64,
    /// Child journals held.
    pub journals: u64,
}

/// Milliseconds since the Unix epoch, from the device clock.
pub(crate) fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    )
}

/// RFC 3339 UTC text of a timestamp, e.g. `2026-11-29T12:00:00.123Z`.
#[must_use]
pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339()
}

impl Device {
    /// Creates the data directory (if needed) and a new, empty encrypted store in it.
    ///
    /// # Errors
    /// [`DeviceError::Store`] (e.g. a store already exists, or the keystore is unavailable).
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let dir = DataDir::create(path)?;
        let store = Store::create(dir.db_path(), &dir.keystore())?;
        Ok(Self {
            dir,
            store,
            clock: Arc::new(SystemClock),
            wiped: None,
        })
    }

    /// Opens the device store in `path`. Past the lease's `wipe_after` the device wipes itself
    /// first and says so.
    ///
    /// # Errors
    /// [`DeviceError::NotSetUp`] when there is none; [`DeviceError::Wiped`] after a wipe;
    /// [`DeviceError::SelfWiped`] when it has just wiped itself; store failures.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_clock(path, Arc::new(SystemClock))
    }

    /// [`Device::open`] with the time read from `clock` (tests of the lease and PIN back-off).
    ///
    /// # Errors
    /// As [`Device::open`].
    pub fn open_with_clock(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        let dir = DataDir::existing(path.as_ref())?;
        if let Some(at) = dir.wipe_started_at() {
            // A wipe was cut short (the key may already be gone): finish it.
            let keys = dir.keystore();
            let shredded = sprig_store::wipe(dir.db_path(), &keys);
            dir.finish_wipe(&at)?;
            if let Err(e) = shredded {
                tracing::warn!(error = %e, "finishing an interrupted wipe: the keystore failed");
            }
            return Err(DeviceError::Wiped { at });
        }
        let store = match Store::open(dir.db_path(), &dir.keystore()) {
            Err(StoreError::DatabaseMissing { .. }) => {
                return Err(match dir.wiped_at() {
                    Some(at) => DeviceError::Wiped { at },
                    None => DeviceError::NotSetUp {
                        path: path.as_ref().to_owned(),
                    },
                });
            }
            other => other?,
        };
        let mut device = Self {
            dir,
            store,
            clock,
            wiped: None,
        };
        device.enforce_wipe_after()?;
        Ok(device)
    }

    /// Opens the store in `path`, creating directory and store when absent (or wiped).
    ///
    /// # Errors
    /// Store failures.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self> {
        match Self::open(path.as_ref()) {
            Err(DeviceError::NotSetUp { .. } | DeviceError::Wiped { .. }) => Self::create(path),
            other => other,
        }
    }

    /// The data directory.
    #[must_use]
    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    /// The roster this device holds.
    ///
    /// # Errors
    /// [`DeviceError::NoRoster`] before the first sync.
    pub fn roster(&self) -> Result<Roster> {
        match self.store.roster() {
            Err(e) if e.is_not_found() => Err(DeviceError::NoRoster),
            other => Ok(other?),
        }
    }

    /// The policies in force (defaults before the first sync).
    ///
    /// # Errors
    /// Store failures.
    pub fn policies(&self) -> Result<Policies> {
        match self.store.setting() {
            Err(e) if e.is_not_found() => Ok(Policies::default()),
            other => Ok(other?.policies()),
        }
    }

    /// Checks a member of staff's PIN against the argon2id hash on the roster.
    ///
    /// Refused before the PIN is looked at: past the lease's `lock_after` (or with the clock
    /// set earlier than the last check-in), after the lease's `max_pin_failures` wrong PINs in
    /// a row (until a sync), and within [`crate::PIN_BACKOFF_SECS`] of the last wrong PIN once
    /// [`crate::PIN_BACKOFF_AFTER`] were entered in a row. A wrong PIN is counted and kept for
    /// the server's audit log; a right one resets the count. Nothing else changes.
    ///
    /// # Errors
    /// [`DeviceError::WrongPin`], [`DeviceError::PinThrottled`], [`DeviceError::PinLocked`],
    /// [`DeviceError::LeaseExpired`], [`DeviceError::ClockBehind`],
    /// [`DeviceError::UnknownStaff`], [`DeviceError::NoPin`], [`DeviceError::InactiveStaff`],
    /// [`DeviceError::NoRoster`].
    pub fn unlock(&self, staff: &StaffId, pin: &str) -> Result<Unlocked> {
        self.check_may_unlock()?;
        let roster = self.roster()?;
        let member = roster
            .staff(staff)
            .ok_or_else(|| DeviceError::UnknownStaff(staff.to_string()))?;
        if !member.active {
            return Err(DeviceError::InactiveStaff);
        }
        let phc = member.pin_hash.ok_or(DeviceError::NoPin)?;
        let hash = PasswordHash::new(&phc).map_err(|_| DeviceError::NoPin)?;
        if Argon2::default()
            .verify_password(pin.as_bytes(), &hash)
            .is_err()
        {
            return Err(self.wrong_pin(staff.as_str()));
        }
        self.right_pin()?;
        Ok(Unlocked {
            staff: staff.clone(),
        })
    }

    /// Records an observation: photos are processed (upright, metadata stripped, resized) and
    /// only the result enters the vault; videos are checked from their first bytes and
    /// streamed into the vault; the entry is written into every tagged child's journal under
    /// one id. Every rule is checked before anything is stored.
    ///
    /// # Errors
    /// [`DeviceError::Rule`] (e.g. a group photo with a child lacking consent),
    /// [`DeviceError::Media`], [`DeviceError::ReadFile`], store failures.
    pub fn observe(&mut self, who: &Unlocked, obs: &Observation) -> Result<EntryId> {
        self.check_may_record()?;
        let roster = self.roster()?;
        let actor = Actor::Staff(who.staff.clone());
        let opts = PhotoOptions::default();

        // 1. Everything that can be refused is checked before the vault is touched.
        let mut photos = Vec::with_capacity(obs.photos.len());
        for path in &obs.photos {
            photos.push(process_photo_file(path, &opts)?);
        }
        for (i, bytes) in obs.photo_bytes.iter().enumerate() {
            photos.push(process_photo_bytes(
                bytes,
                &format!("photo {}", i + 1),
                &opts,
            )?);
        }
        let mut videos = Vec::with_capacity(obs.videos.len());
        for path in &obs.videos {
            videos.push(open_video(path, &opts.limits)?);
        }
        let mut memory_videos = Vec::with_capacity(obs.video_bytes.len());
        for (i, bytes) in obs.video_bytes.iter().enumerate() {
            let container = sprig_media::sniff_video(
                &bytes[..bytes.len().min(VIDEO_SNIFF_LEN)],
                bytes.len() as u64,
                &opts.limits,
            )
            .map_err(|source| DeviceError::Media {
                file: format!("video {}", i + 1),
                source,
            })?;
            memory_videos.push((container.mime_type(), bytes));
        }
        let mut media: Vec<MediaRef> = photos.iter().map(|p| p.media.clone()).collect();
        media.extend(memory_videos.iter().map(|(mime, bytes)| MediaRef {
            sha256: Sha256::from_bytes(<sha2::Sha256 as sha2::Digest>::digest(bytes).into()),
            kind: MediaKind::Video,
            mime: (*mime).to_owned(),
            size: bytes.len() as u64,
            width: 0,
            height: 0,
        }));
        media.extend(videos.iter().map(|v| MediaRef {
            sha256: Sha256::from_bytes([0; 32]),
            kind: MediaKind::Video,
            mime: v.mime.to_owned(),
            size: v.len,
            width: 0,
            height: 0,
        }));
        let new_entry = |media: Vec<MediaRef>| NewEntry {
            children: obs.children.clone(),
            text: obs.text.clone(),
            areas: obs.areas.clone(),
            band: obs.band,
            characteristics: obs.characteristics.clone(),
            next_steps: obs.next_steps.clone(),
            media,
            draft: obs.draft,
        };
        plan_entry(&roster, &actor, new_entry(media.clone()), self.now())?;

        // 2. Media into the vault.
        for p in &photos {
            let sha = self.store.put_media("image/jpeg", &p.photo)?;
            debug_assert_eq!(sha, p.media.sha256);
            self.store.set_thumbnail(&sha, &p.thumbnail)?;
        }
        for (mime, bytes) in &memory_videos {
            self.store.put_media(mime, bytes)?;
        }
        let first_video = photos.len() + memory_videos.len();
        for (i, v) in videos.into_iter().enumerate() {
            let (sha, size) = self.stream_video(v)?;
            media[first_video + i].sha256 = sha;
            media[first_video + i].size = size;
        }

        // 3. The entry, into every tagged child's journal, in one transaction with their
        // dirty marks: a group observation is in every journal or in none.
        let plan = plan_entry(&roster, &actor, new_entry(media), self.now())?;
        let mut journals = Vec::with_capacity(plan.children.len());
        for child in &plan.children {
            let mut journal = match self.store.journal(child) {
                Err(e) if e.is_not_found() => Journal::new(child.clone()),
                other => other?,
            };
            journal.apply_entry(&plan)?;
            journals.push(journal);
        }
        self.store.save_journals_dirty(&mut journals)?;
        Ok(plan.id)
    }

    /// Refuses new records on a wiped or quarantined device.
    pub(crate) fn check_may_record(&self) -> Result<()> {
        self.check_live()?;
        if self.store.quarantined_at()?.is_some() {
            return Err(DeviceError::Quarantined {
                message: "This tablet is quarantined: the server refused a change it sent. \
                          Nothing new can be recorded until a manager reviews and releases it \
                          and the tablet has synced again. Nothing recorded on it has been deleted."
                    .into(),
            });
        }
        Ok(())
    }

    fn stream_video(&mut self, v: OpenVideo) -> Result<(Sha256, u64)> {
        let max = v.max;
        let OpenVideo {
            path,
            mut file,
            head,
            mime,
            ..
        } = v;
        let read_err = |source| DeviceError::ReadFile {
            path: path.clone(),
            source,
        };
        let mut w = self.store.media_writer(mime)?;
        w.write_all(&head).map_err(read_err)?;
        // io::copy moves 8 KiB at a time; the writer holds at most one vault chunk. A file
        // that grew past its checked size since it was opened is refused, not truncated.
        let max_rest = max.saturating_sub(head.len() as u64);
        std::io::copy(&mut (&mut file).take(max_rest), &mut w).map_err(read_err)?;
        let mut probe = [0u8; 1];
        if file.read(&mut probe).map_err(read_err)? != 0 {
            return Err(DeviceError::Media {
                file: path.display().to_string(),
                source: MediaError::VideoTooLarge {
                    bytes: max + 1,
                    max_bytes: max,
                },
            });
        }
        let size = w.len();
        Ok((w.finish()?, size))
    }

    /// A child's journal, newest first, with each media item's state on this device.
    ///
    /// # Errors
    /// [`DeviceError::UnknownChild`]; store failures.
    pub fn journal(&self, who: &Unlocked, child: &ChildId) -> Result<Vec<JournalItem>> {
        self.check_live()?;
        let roster = self.roster()?;
        if !sprig_core::rules::may_read_journal(&roster, &Actor::Staff(who.staff.clone()), child) {
            return Err(match roster.child(child) {
                None => DeviceError::UnknownChild(child.to_string()),
                Some(_) => DeviceError::InactiveStaff,
            });
        }
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.timeline(child, 200, cursor.as_ref())?;
            let Some(last) = page.last() else { break };
            cursor = Some(sprig_store::Cursor::after(last));
            for entry in page {
                out.push(self.item(entry)?);
            }
        }
        Ok(out)
    }

    pub(crate) fn item(&self, entry: Entry) -> Result<JournalItem> {
        let children = match &entry.group {
            Some(g) => {
                let mut c: Vec<ChildId> = self
                    .store
                    .entries_in_group(g)?
                    .into_iter()
                    .map(|e| e.child)
                    .collect();
                c.sort();
                c.dedup();
                c
            }
            None => vec![entry.child.clone()],
        };
        let media = entry
            .media
            .iter()
            .map(|m| {
                let status = match self.store.media_info(&m.sha256) {
                    Ok(info) => info.state.into(),
                    Err(e) if e.is_not_found() => MediaStatus::Remote,
                    Err(e) => return Err(e.into()),
                };
                Ok(MediaItem {
                    media: m.clone(),
                    status,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(JournalItem {
            entry,
            children,
            media,
        })
    }

    /// Counts of documents and media, and the enrolment.
    ///
    /// # Errors
    /// Store failures.
    pub fn status(&self) -> Result<Status> {
        if let Some(at) = &self.wiped {
            return Ok(Status::wiped(at.clone()));
        }
        let count = |s| -> Result<u64> { Ok(self.store.media_in_state(s)?.len() as u64) };
        let journals = self.store.journal_children()?.len() as u64;
        let mut documents = journals;
        for id in [DocId::Roster, DocId::Setting] {
            match self.store.doc_stats(&id) {
                Ok(_) => documents += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let identity = self.store.device_identity()?;
        Ok(Status {
            enrolled: identity.is_some(),
            device_id: identity.as_ref().map(|i| i.device_id.clone()),
            server_url: identity.as_ref().map(|i| i.server_url.clone()),
            pending_media: count(MediaState::Captured)?,
            uploaded_media: count(MediaState::Uploaded)?,
            purged_media: count(MediaState::Purged)?,
            unsynced_docs: self.store.dirty_docs()?.0,
            unreported_pin_failures: self.store.unreported_pin_failures(usize::MAX)?.len() as u64,
            locked: self.lock_reason()?,
            quarantined: self.store.quarantined_at()?.is_some(),
            wiped: false,
            wiped_at: None,
            last_sync: self.store.last_sync()?.map(Timestamp),
            documents,
            journals,
        })
    }

    /// The status of the device in `path`, also when it has never been set up (then nothing
    /// is created).
    ///
    /// # Errors
    /// Store failures other than "no store here".
    pub fn status_at(path: impl AsRef<Path>) -> Result<Status> {
        Self::status_with_clock(path, Arc::new(SystemClock))
    }

    /// [`Device::status_at`] with the time read from `clock`. Opening past `wipe_after` wipes
    /// the device, and the status then says it was wiped.
    ///
    /// # Errors
    /// Store failures other than "no store here".
    pub fn status_with_clock(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Status> {
        match Self::open_with_clock(path.as_ref(), clock) {
            Ok(d) => d.status(),
            Err(DeviceError::NotSetUp { .. }) => Ok(Status::default()),
            Err(DeviceError::Wiped { at }) => Ok(Status::wiped(at)),
            Err(DeviceError::SelfWiped { .. }) => Ok(Status::wiped(
                DataDir::existing(path.as_ref())?
                    .wiped_at()
                    .unwrap_or_default(),
            )),
            Err(e) => Err(e),
        }
    }
}

impl Status {
    fn wiped(at: String) -> Self {
        Self {
            wiped: true,
            wiped_at: Some(at),
            ..Self::default()
        }
    }
}

/// A processed photo, ready for the vault.
struct ReadyPhoto {
    media: MediaRef,
    photo: Vec<u8>,
    thumbnail: Vec<u8>,
}

fn process_photo_file(path: &Path, opts: &PhotoOptions) -> Result<ReadyPhoto> {
    let read_err = |source| DeviceError::ReadFile {
        path: path.to_owned(),
        source,
    };
    let media_err = |source| DeviceError::Media {
        file: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    if len > opts.limits.max_photo_bytes {
        return Err(media_err(MediaError::PhotoFileTooLarge {
            bytes: len,
            max_bytes: opts.limits.max_photo_bytes,
        }));
    }
    let mut original = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(opts.limits.max_photo_bytes + 1)
        .read_to_end(&mut original)
        .map_err(read_err)?;
    let processed = process_photo_bytes(&original, &path.display().to_string(), opts);
    // The original (with its GPS position) never outlives this function.
    original.zeroize();
    processed
}

/// Processes a photo held in memory; `label` names it in errors.
fn process_photo_bytes(original: &[u8], label: &str, opts: &PhotoOptions) -> Result<ReadyPhoto> {
    let media_err = |source| DeviceError::Media {
        file: label.to_owned(),
        source,
    };
    if original.len() as u64 > opts.limits.max_photo_bytes {
        return Err(media_err(MediaError::PhotoFileTooLarge {
            bytes: original.len() as u64,
            max_bytes: opts.limits.max_photo_bytes,
        }));
    }
    let processed = sprig_media::process_photo(original, opts).map_err(media_err)?;
    let sha = Sha256::from_hex(&processed.sha256)
        .map_err(|e| DeviceError::Protocol(format!("photo pipeline returned {e}")))?;
    Ok(ReadyPhoto {
        media: MediaRef {
            sha256: sha,
            kind: MediaKind::Photo,
            mime: "image/jpeg".into(),
            size: processed.photo.bytes.len() as u64,
            width: processed.photo.width,
            height: processed.photo.height,
        },
        photo: processed.photo.bytes,
        thumbnail: processed.thumbnail.bytes,
    })
}

/// A video whose head was checked, ready to stream.
struct OpenVideo {
    path: PathBuf,
    file: File,
    head: Vec<u8>,
    mime: &'static str,
    len: u64,
    /// The most bytes accepted.
    max: u64,
}

fn open_video(path: &Path, limits: &sprig_media::Limits) -> Result<OpenVideo> {
    let read_err = |source| DeviceError::ReadFile {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    let mut head = Vec::with_capacity(VIDEO_SNIFF_LEN);
    (&mut file)
        .take(VIDEO_SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    let container =
        sprig_media::sniff_video(&head, len, limits).map_err(|source| DeviceError::Media {
            file: path.display().to_string(),
            source,
        })?;
    Ok(OpenVideo {
        path: path.to_owned(),
        file,
        head,
        mime: container.mime_type(),
        len,
        max: limits.max_video_bytes,
    })
}
