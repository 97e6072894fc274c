// Every sentence the manager console shows, in UK English, in one place (as ../strings.ts is
// for the parents' portal). Refusals show the server's own `message`, which says what to do.
import type { DeviceAction, DeviceStatus, PhotoConsent, StaffRole } from './types';

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
const observations = (n: number) => plural(n, 'observation', 'observations');
const photos = (n: number) => plural(n, 'photo', 'photos');

/** "3 observations and 2 photos", or `null` when nothing is waiting. */
export function unsynced(docs: number, media: number): string | null {
  if (docs && media) return `${observations(docs)} and ${photos(media)}`;
  if (docs) return observations(docs);
  if (media) return photos(media);
  return null;
}

export const ct = {
  nav: 'Console sections',
  sections: {
    tablets: 'Tablets',
    roster: 'Roster',
    approvals: 'Approvals',
    monitoring: 'Monitoring',
    audit: 'Audit log',
    policy: 'Policy',
  },
  loading: 'Loading…',
  refresh: 'Refresh',
  save: 'Save',
  saving: 'Saving…',
  cancel: 'Cancel',
  close: 'Close',
  done: 'Done',
  never: 'Never',
  none: '—',
  yes: 'Yes',
  no: 'No',
  offline: 'The server could not be reached. Nothing was changed: check the connection and try again.',
  // A fresh second factor.
  freshCode: 'Code from your authenticator app',
  freshCodeHint: 'Enter the 6-digit code your app shows now, to confirm it is you.',
  // Tablets.
  tablets: {
    title: 'Tablets',
    intro: 'Every enrolled tablet, refreshed every few seconds.',
    empty: 'No tablets are enrolled yet. Enrol one to start.',
    paused: 'Live updates are paused while you are away.',
    resume: 'Update now',
    enrol: 'Enrol a tablet',
    name: 'Tablet',
    status: 'Status',
    lastSeen: 'Last seen',
    lastSync: 'Last sync',
    version: 'App version',
    unsynced: 'Not yet synced',
    lease: 'Lease expires',
    offsite: 'Off site until',
    missing: 'Missing',
    missingHint: 'Not seen for over a day.',
    unsyncedCell: (docs: number, media: number) => unsynced(docs, media) ?? 'Nothing',
    actions: (name: string) => `Actions for ${name}`,
    statusName: {
      active: 'Active',
      locked: 'Locked',
      quarantined: 'Quarantined',
      revoked: 'Revoked',
      'wipe-pending': 'Wipe pending',
      wiped: 'Wiped',
      'retire-pending': 'Retire pending',
      retired: 'Retired',
    } satisfies Record<DeviceStatus, string>,
    action: {
      revoke: 'Revoke',
      wipe: 'Wipe',
      retire: 'Retire',
      release: 'Release from quarantine',
    } satisfies Record<DeviceAction, string>,
    reportMissing: 'Report missing and wipe',
    permitOffsite: 'Allow off site',
    log: 'Custody log',
    custody: (name: string) => `Custody of ${name}`,
    checkOut: 'Checked out',
    checkIn: 'Back in cupboard',
    custodyDone: (name: string, event: 'checked_out' | 'returned') =>
      event === 'checked_out' ? `${name} is recorded as checked out.` : `${name} is recorded as back in the cupboard.`,
    // Confirmations: what happens, and to the unsynced data.
    confirmTitle: (action: DeviceAction, name: string) =>
      ({ revoke: `Revoke ${name}?`, wipe: `Wipe ${name}?`, retire: `Retire ${name}?`, release: `Release ${name} from quarantine?` })[action],
    missingTitle: (name: string) => `Report ${name} missing and wipe it?`,
    what: {
      revoke: 'The tablet can no longer sync: the server refuses its certificate from now on. Nothing on it is deleted.',
      wipe: 'At its next connection the tablet destroys its key and deletes everything it holds, then can be enrolled again.',
      retire: 'At its next connection the tablet uploads everything it still holds, then wipes itself and leaves the register.',
      release: 'The tablet syncs again. The change that put it in quarantine is replaced by the server’s copy.',
    } satisfies Record<DeviceAction, string>,
    missingWhat: 'Use this for a tablet that is lost or stolen. It is wiped the moment it connects, and its certificate is no longer accepted.',
    dataLoss: (action: DeviceAction, docs: number, media: number) => {
      const n = unsynced(docs, media);
      if (!n) return 'Everything on this tablet has been synced: nothing is lost.';
      const has = `This tablet has ${n} not yet synced`;
      return {
        revoke: `${has}; revoking keeps them on the tablet, but they never reach the server.`,
        wipe: `${has}; wiping deletes them.`,
        retire: `${has}; retiring uploads them first, then wipes the tablet.`,
        release: `${has}; they are uploaded at its next sync.`,
      }[action];
    },
    confirm: (action: DeviceAction) =>
      ({ revoke: 'Revoke tablet', wipe: 'Wipe tablet', retire: 'Retire tablet', release: 'Release tablet' })[action],
    changed: (name: string, status: DeviceStatus) => `${name}: ${ct.tablets.statusName[status].toLowerCase()}.`,
    offsiteTitle: (name: string) => `Allow ${name} off site`,
    offsiteIntro: 'The tablet may sync from outside the setting’s networks until the time you choose. The permission and its end go into the audit log.',
    offsiteUntil: 'Allowed until',
    offsiteSave: 'Allow off site',
    offsiteSaved: (name: string) => `${name} may sync off site until the time chosen.`,
    offsiteBad: 'Choose a date and time in the future.',
  },
  enrol: {
    title: 'Enrol a tablet',
    nameLabel: 'Tablet name',
    nameHint: 'A name staff recognise, such as “Acorns room tablet”.',
    create: 'Create enrolment code',
    creating: 'Creating…',
    steps: 'On the tablet, open Sprig and scan this QR code, or type the code and the server address.',
    qrAlt: 'QR code for enrolling the tablet',
    code: 'Code',
    url: 'Server address',
    fingerprint: 'Setting fingerprint',
    fingerprintHint: 'The tablet shows the same fingerprint: check that they match.',
    expiresIn: (mmss: string) => `Expires in ${mmss}`,
    expired: 'This code has expired. Create a new one.',
    waiting: 'Waiting for the tablet to enrol…',
    enrolled: (name: string) => `${name} has enrolled. It is in the register.`,
    again: 'Create a new code',
  },
  // Roster.
  roster: {
    title: 'Roster',
    tabs: 'Roster lists',
    rooms: 'Rooms',
    children: 'Children',
    staff: 'Staff',
    parents: 'Parents and relatives',
    roomsIntro: 'Rooms come from the children’s records: set a child’s room to add one.',
    noRooms: 'No rooms yet.',
    inRoom: (n: number) => plural(n, 'child', 'children'),
    name: 'Name',
    room: 'Room',
    keyWorker: 'Key worker',
    dob: 'Date of birth',
    consent: 'Photo consent (as recorded on paper)',
    consentShort: 'Photo consent',
    consentName: { yes: 'Yes', no: 'No', unanswered: 'Not recorded' } satisfies Record<PhotoConsent, string>,
    leaving: 'Leaving date',
    status: 'Status',
    left: 'Left',
    attending: 'Attending',
    edit: 'Edit',
    addChild: 'Add a child',
    editChild: (name: string) => `Edit ${name}`,
    childAdded: (name: string) => `${name} has been added.`,
    childSaved: (name: string) => `${name}’s record has been saved.`,
    noneChosen: 'None',
    role: 'Role',
    roleName: { manager: 'Manager', practitioner: 'Practitioner' } satisfies Record<StaffRole, string>,
    active: 'Active',
    inactive: 'Deactivated',
    email: 'E-mail address',
    emailHint: 'Managers sign in to this console with it.',
    password: 'Console password',
    passwordHint: 'At least 12 characters. Only for managers.',
    pin: 'Tablet PIN',
    pinHint: '4 to 8 digits, for unlocking the tablets.',
    addStaff: 'Add a staff member',
    staffAdded: (name: string) => `${name} has been added.`,
    editStaff: (name: string) => `Edit ${name}`,
    staffSaved: (name: string) => `${name}’s record has been saved.`,
    deactivate: 'Deactivate',
    keepActive: 'Keep active',
    deactivateWhat: (name: string) =>
      `${name}’s PIN stops working on every tablet at its next sync. Their observations stay in the journals.`,
    deactivated: (name: string) => `${name} has been deactivated.`,
    resetPin: 'Reset PIN',
    newPin: 'New PIN',
    pinReset: (name: string) => `${name}’s new PIN works on each tablet after its next sync.`,
    invite: 'Invite a parent or relative',
    inviteSend: 'Make invitation link',
    invited: (name: string) => `${name} is added. Give them the invitation link below.`,
    linkFor: (name: string) => `Invitation link for ${name}`,
    linkHow: (until: string) =>
      `Give this link to the parent, by e-mail or text message. It works once, until ${until}; with it they choose their password.`,
    linkLabel: 'Invitation link',
    copy: 'Copy link',
    copied: 'Copied',
    done: 'Done',
    inviteFor: 'Children',
    inviteChildren: 'Choose at least one child.',
    resend: 'New invitation link',
    resent: (name: string) => `A new invitation link for ${name} is below; the earlier one no longer works.`,
    account: 'Account',
    hasPassword: 'Signed up',
    invitePending: 'Invited, not signed up yet',
    notInvited: 'Not invited',
    linked: 'Children',
    link: 'Link a child',
    linkChild: (name: string) => `Link a child to ${name}`,
    linkDo: 'Link',
    linkedDone: (parent: string, child: string) => `${parent} is now linked to ${child}.`,
    unlink: (child: string) => `Unlink ${child}`,
    unlinkTitle: (parent: string, child: string) => `Unlink ${parent} from ${child}?`,
    unlinkWhat: (parent: string, child: string) => `${parent} no longer sees ${child}’s journal in the portal.`,
    unlinkDo: 'Unlink',
    unlinked: (parent: string, child: string) => `${parent} is no longer linked to ${child}.`,
  },
  // Approvals.
  approvals: {
    title: 'Approvals',
    intro: 'What parents have shared from home. Approved entries appear in the child’s journal.',
    empty: 'Nothing is waiting for approval.',
    from: (parent: string, date: string) => `From ${parent}, ${date}`,
    photoAlt: (child: string) => `Photo shared for ${child}`,
    approve: 'Approve',
    reject: 'Reject',
    rejectTitle: (child: string) => `Reject this entry for ${child}?`,
    reason: 'Reason (the parent sees it)',
    reasonNeeded: 'Say why, so the parent knows what to change.',
    rejectDo: 'Reject entry',
    approved: (child: string) => `Added to ${child}’s journal.`,
    rejected: 'Rejected; the parent sees your reason.',
    reviewsTitle: 'Observations waiting for review',
    reviewsIntro: 'The review gate is on: parents see these once you put them in the journal.',
    by: (author: string, date: string) => `By ${author}, ${date}`,
    nextSteps: 'Next steps:',
    putInJournal: 'Put in journal',
    reviewed: (children: string) => `In the journal for ${children}’s parents.`,
  },
  // Monitoring.
  monitoring: {
    title: 'Monitoring',
    period: 'Period',
    days: (n: number) => `${n} days`,
    perChild: 'Observations per child',
    perKeyWorker: 'Observations per key worker',
    perArea: 'Observations per area of learning',
    perDay: 'Observations per day',
    child: 'Child',
    keyWorker: 'Key worker',
    area: 'Area of learning',
    date: 'Date',
    count: 'Observations',
    lastObserved: 'Last observed',
    notObserved: 'Children not observed recently',
    daysSince: 'Days since observed',
    neverObserved: 'Never observed',
    recentEdits: 'Recent edits',
    noEdits: 'No observation was corrected in this period.',
    editedAt: 'Corrected',
    children: 'Children',
    author: 'Recorded by',
    text: 'Text now',
    allObserved: 'Every child has been observed recently.',
    waitingReview: (n: number) => (n ? `${plural(n, 'entry', 'entries')} waiting for review.` : 'Nothing is waiting for review.'),
  },
  // Audit.
  audit: {
    title: 'Audit log',
    filters: 'Filter',
    device: 'Tablet',
    staff: 'Staff member',
    child: 'Child',
    action: 'Action',
    actionHint: 'For example device.wipe',
    since: 'Since',
    any: 'Any',
    apply: 'Show',
    csv: 'Download CSV',
    empty: 'Nothing in the log matches.',
    at: 'When',
    actor: 'Who',
    client: 'From',
    detail: 'Detail',
  },
  // Policy.
  policy: {
    title: 'Policy',
    lease: 'Offline lease',
    lockAfter: 'Lock after (hours without a sync)',
    wipeAfter: 'Wipe after (days without a sync)',
    pinLimit: 'Wrong PINs before a tablet locks',
    inactivity: 'Lock after inactivity (minutes)',
    networks: 'Networks tablets may sync from',
    networksHint: 'One per line, such as 192.168.1.0/24. Leave empty to allow any network.',
    notObserved: 'Flag a child not observed for (days)',
    reviewGate: 'Staff observations wait for a manager’s review before parents see them',
    agreement: 'Parent agreement',
    agreementText: 'Agreement text',
    agreementVersion: 'Version',
    agreementHint: 'Change the version to ask every parent to accept the agreement again.',
    saved: 'The policy has been saved. Tablets take it at their next sync.',
  },
};

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return ct.never;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function formatDay(ymd: string | null | undefined): string {
  if (!ymd) return ct.none;
  const d = new Date(`${ymd.slice(0, 10)}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return ymd;
  return d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
}

/** Seconds left as `m:ss`. */
export function mmss(secs: number): string {
  const s = Math.max(0, Math.floor(secs));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
