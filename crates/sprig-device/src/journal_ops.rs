//! Changes a member of staff makes to entries that exist: publish a draft, edit (a new
//! revision; the old text stays visible), reply, and review parent contributions (approve, or
//! reject with a reason the parent sees). Every change goes through `sprig_core::Journal`'s
//! rule-checked methods, into every journal holding a copy, in one transaction with the dirty
//! marks. Nothing here deletes an entry or writes the roster or setting documents.

use sprig_core::{
    Actor, AgeBand, Area, Characteristic, ChildId, EntryEdit, EntryId, EntryKind, Journal, ReplyId,
};

use crate::device::{Device, Unlocked};
use crate::error::{DeviceError, Result};

/// A correction of an entry. `None` keeps the field as it is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// The corrected text.
    pub text: Option<String>,
    /// The corrected next steps.
    pub next_steps: Option<String>,
    /// The areas of learning.
    pub areas: Option<Vec<Area>>,
    /// The age band (`Some(None)` clears it).
    pub band: Option<Option<AgeBand>>,
    /// The characteristics of effective learning.
    pub characteristics: Option<Vec<Characteristic>>,
}

/// The text is about a child: it never reaches logs.
impl std::fmt::Debug for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edit")
            .field("text", &self.text.as_ref().map(|t| t.chars().count()))
            .finish_non_exhaustive()
    }
}

impl Device {
    /// The journals holding a copy of `entry` (one, or every child of a group observation).
    fn copies(&self, entry: &EntryId, only: Option<&ChildId>) -> Result<Vec<Journal>> {
        let children = self.store.entry_children(entry)?;
        if children.is_empty() {
            return Err(DeviceError::Rule(sprig_core::RuleError::EntryNotFound));
        }
        let chosen: Vec<ChildId> = match only {
            Some(c) if children.contains(c) => vec![c.clone()],
            Some(_) => return Err(DeviceError::Rule(sprig_core::RuleError::EntryNotFound)),
            None => children,
        };
        chosen.iter().map(|c| Ok(self.store.journal(c)?)).collect()
    }

    fn actor(&self, who: &Unlocked) -> Result<(sprig_core::Roster, Actor)> {
        self.check_live()?;
        self.who(who)?;
        Ok((self.roster()?, Actor::Staff(who.staff().clone())))
    }

    /// Publishes a draft observation to the child's parents (every copy of a group one).
    ///
    /// # Errors
    /// [`DeviceError::Rule`] (`EntryNotFound`, `NotAnObservation`); store failures.
    pub fn publish(&mut self, who: &Unlocked, entry: &EntryId) -> Result<()> {
        let (roster, actor) = self.actor(who)?;
        let at = self.now();
        let mut journals = self.copies(entry, None)?;
        for j in &mut journals {
            j.publish(&roster, &actor, entry, at)?;
        }
        self.store.save_journals_dirty(&mut journals)?;
        Ok(())
    }

    /// Corrects an observation's text, next steps or tags. The text is kept as a new revision;
    /// the earlier ones stay visible. Applied to every copy of a group observation.
    ///
    /// # Errors
    /// [`DeviceError::Rule`] (`EntryNotFound`, `TextTooLong`, `NotAnObservation` for a parent's
    /// contribution); store failures.
    pub fn edit(&mut self, who: &Unlocked, entry: &EntryId, edit: &Edit) -> Result<()> {
        let (roster, actor) = self.actor(who)?;
        let at = self.now();
        let mut journals = self.copies(entry, None)?;
        for j in &mut journals {
            let current = j
                .entry(entry)
                .ok_or(DeviceError::Rule(sprig_core::RuleError::EntryNotFound))?;
            if current.kind != EntryKind::Observation {
                return Err(DeviceError::Rule(sprig_core::RuleError::NotAnObservation));
            }
            let change = EntryEdit {
                text: edit.text.clone().unwrap_or(current.text),
                next_steps: edit.next_steps.clone().unwrap_or(current.next_steps),
                areas: edit.areas.clone().unwrap_or(current.areas),
                band: edit.band.unwrap_or(current.band),
                characteristics: edit
                    .characteristics
                    .clone()
                    .unwrap_or(current.characteristics),
            };
            if change.text.trim().is_empty() && current.media.is_empty() {
                return Err(DeviceError::Rule(sprig_core::RuleError::EmptyEntry));
            }
            j.edit_entry(&roster, &actor, entry, &change, at)?;
        }
        self.store.save_journals_dirty(&mut journals)?;
        Ok(())
    }

    /// Replies under an entry. A group observation needs `child`: a reply belongs to one
    /// child's journal (and is seen by that child's parents only).
    ///
    /// # Errors
    /// [`DeviceError::InvalidInput`] for a group entry without `child`; [`DeviceError::Rule`]
    /// (`EntryNotFound`, `EmptyEntry`, `TextTooLong`); store failures.
    pub fn reply(
        &mut self,
        who: &Unlocked,
        entry: &EntryId,
        child: Option<&ChildId>,
        text: &str,
    ) -> Result<ReplyId> {
        let (roster, actor) = self.actor(who)?;
        let at = self.now();
        let mut journals = self.copies(entry, child)?;
        if journals.len() > 1 {
            return Err(DeviceError::InvalidInput(
                "this observation is about several children: choose whose journal the reply \
                 belongs to (--child)"
                    .into(),
            ));
        }
        let id = journals[0].reply(&roster, &actor, entry, text, at)?;
        self.store.save_journals_dirty(&mut journals)?;
        Ok(id)
    }

    /// Approves a parent's contribution into the journal.
    ///
    /// # Errors
    /// [`DeviceError::Rule`] (`NotAContribution`, `AlreadyReviewed`, `EntryNotFound`).
    pub fn approve(&mut self, who: &Unlocked, entry: &EntryId) -> Result<()> {
        let (roster, actor) = self.actor(who)?;
        let at = self.now();
        let mut journals = self.copies(entry, None)?;
        for j in &mut journals {
            j.approve(&roster, &actor, entry, at)?;
        }
        self.store.save_journals_dirty(&mut journals)?;
        Ok(())
    }

    /// Rejects a parent's contribution; it never enters the journal. The reason is written as
    /// a staff reply under the contribution, which is what its parent sees with the outcome.
    ///
    /// # Errors
    /// [`DeviceError::InvalidInput`] without a reason; [`DeviceError::Rule`]
    /// (`NotAContribution`, `AlreadyReviewed`, `EntryNotFound`).
    pub fn reject(&mut self, who: &Unlocked, entry: &EntryId, reason: &str) -> Result<()> {
        if reason.trim().is_empty() {
            return Err(DeviceError::InvalidInput(
                "give the parent a reason for turning their contribution down".into(),
            ));
        }
        let (roster, actor) = self.actor(who)?;
        let at = self.now();
        let mut journals = self.copies(entry, None)?;
        for j in &mut journals {
            // Checked first, so a refused rejection writes no reply either.
            let e = j
                .entry(entry)
                .ok_or(DeviceError::Rule(sprig_core::RuleError::EntryNotFound))?;
            if e.kind != EntryKind::ParentContribution {
                return Err(DeviceError::Rule(sprig_core::RuleError::NotAContribution));
            }
            if e.status != sprig_core::EntryStatus::Pending {
                return Err(DeviceError::Rule(sprig_core::RuleError::AlreadyReviewed(
                    e.status,
                )));
            }
            j.reply(&roster, &actor, entry, reason.trim(), at)?;
            j.reject(&roster, &actor, entry, at)?;
        }
        self.store.save_journals_dirty(&mut journals)?;
        Ok(())
    }
}
