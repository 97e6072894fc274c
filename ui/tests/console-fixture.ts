// A small setting for the console's component tests: two tablets (one with unsynced work, one
// missing), a roster, a parent's contribution, known coverage figures and an audit trail.
import type { MemorySeed } from '../src/portal/backend/memory';
import type { AdminDevice, Coverage } from '../src/portal/console/types';

export const CLOCK = Date.parse('2026-12-02T09:00:00Z');
export const RECOVERY = ['3f7k-9q2m', 'a1b2-c3d4', 'e5f6-g7h8', 'j9k1-m2n3', 'p4q5-r6s7', 't8v9-w1x2', 'y3z4-a5b6', 'c7d8-e9f1', 'g2h3-j4k5', 'm6n7-p8q9'];

function device(over: Partial<AdminDevice> & Pick<AdminDevice, 'id' | 'name'>): AdminDevice {
  return {
    status: 'active',
    locked: false,
    last_seen: '2026-12-02T08:55:00Z',
    last_sync: '2026-12-02T08:55:00Z',
    app_version: '0.1.0',
    unsynced_docs: 0,
    unsynced_media: 0,
    lease_expires_at: '2026-12-02T20:55:00Z',
    missing: false,
    off_site_until: null,
    ...over,
  };
}

const coverage = (days: number, scale: number): Coverage => ({
  days,
  per_child: [
    { child_id: 'c-ada', name: 'Ada Birchley', count: 4 * scale, last_observed_at: '2026-12-01T10:00:00Z' },
    { child_id: 'c-bram', name: 'Bram Coldwell', count: 1 * scale, last_observed_at: '2026-11-28T10:00:00Z' },
    { child_id: 'c-dev', name: 'Dev Elmsworth', count: 0, last_observed_at: null },
  ],
  per_key_worker: [
    { staff_id: 's-amara', name: 'Amara Okafor', count: 3 * scale },
    { staff_id: 's-morgan', name: 'Morgan Hale', count: 2 * scale },
  ],
  per_area: [
    { area: 'mathematics', count: 3 * scale },
    { area: 'literacy', count: 2 * scale },
    { area: 'physical-development', count: 0 },
  ],
  per_day: [
    { date: '2026-11-30', count: 2 * scale },
    { date: '2026-12-01', count: 3 * scale },
  ],
  not_observed: [{ child_id: 'c-dev', name: 'Dev Elmsworth', days: null }],
  waiting_review: 2 * scale,
  recent_edits: [
    {
      entry_id: 'e-edit',
      children: ['Ada Birchley', 'Bram Coldwell'],
      author: 'Amara Okafor',
      edited_at: '2026-12-01T10:15:00.000Z',
      text: 'Counted the conkers to twelve',
    },
  ],
});

export function managerSeed(totpEnabled: boolean): MemorySeed {
  return {
    email: 'morgan@acorn.example',
    password: 'conkers and acorns',
    me: { id: 's-morgan', name: 'Morgan Hale', role: 'manager', totp_enabled: totpEnabled, agreement_required: false, children: [] },
    totpCode: '246810',
    recoveryCodes: [...RECOVERY],
    agreement: { version: '1', text: '' },
    sessions: [],
    journals: {},
    console: {
      devices: [
        device({ id: 'd-1', name: 'Acorns tablet', unsynced_docs: 3, unsynced_media: 2 }),
        device({ id: 'd-2', name: 'Oaks tablet', last_seen: '2026-11-30T16:00:00Z', missing: true }),
        device({ id: 'd-3', name: 'Old tablet', status: 'quarantined', unsynced_docs: 1 }),
      ],
      children: [
        { id: 'c-ada', name: 'Ada Birchley', room: 'Acorns', key_worker: 's-amara', date_of_birth: '2022-05-04', photo_consent: 'yes', status: 'attending', parents: ['p-alex'] },
        { id: 'c-bram', name: 'Bram Coldwell', room: 'Oaks', key_worker: 's-morgan', date_of_birth: '2022-01-15', photo_consent: 'unanswered', status: 'attending', parents: [] },
        { id: 'c-dev', name: 'Dev Elmsworth', room: 'Oaks', key_worker: 's-morgan', date_of_birth: null, photo_consent: 'no', status: 'attending', parents: [] },
      ],
      staff: [
        { id: 's-amara', name: 'Amara Okafor', role: 'practitioner', active: true, email: null },
        { id: 's-morgan', name: 'Morgan Hale', role: 'manager', active: true, email: 'morgan@acorn.example' },
      ],
      parents: [{ id: 'p-alex', name: 'Alex Birchley', email: 'alex@example.com', children: ['c-ada'], invited: true, has_password: true }],
      rooms: [
        { id: 'r-acorns', name: 'Acorns' },
        { id: 'r-oaks', name: 'Oaks' },
      ],
      coverage: { 7: coverage(7, 1), 30: coverage(30, 3), 90: coverage(90, 5) },
      contributions: [
        {
          id: 'k-1',
          child_id: 'c-ada',
          child_name: 'Ada Birchley',
          parent_id: 'p-alex',
          parent_name: 'Alex Birchley',
          created_at: '2026-12-01T18:00:00Z',
          text: 'Ada planted bulbs in the garden.',
          media: [{ id: 'm-bulbs', kind: 'photo', mime: 'image/jpeg' }],
          status: 'pending',
        },
        {
          id: 'k-2',
          child_id: 'c-ada',
          child_name: 'Ada Birchley',
          parent_id: 'p-alex',
          parent_name: 'Alex Birchley',
          created_at: '2026-12-01T19:00:00Z',
          text: 'A photo from the party.',
          media: [],
          status: 'pending',
        },
      ],
      audit: [
        { at: '2026-12-02T08:00:00Z', actor: 'staff:s-morgan', client: '10.0.0.5 Firefox', device: 'd-1', action: 'device.offsite', detail: 'until 2026-12-03T17:00:00Z' },
        { at: '2026-12-01T08:00:00Z', actor: 'admin', client: null, device: null, action: 'staff.add', detail: 'Amara Okafor' },
      ],
      policy: {
        lock_after_secs: 43_200,
        wipe_after_secs: 7_776_000,
        max_pin_failures: 10,
        inactivity_lock_secs: 120,
        allow_networks: ['192.168.1.0/24'],
        not_observed_days: 14,
        review_gate: false,
        agreement_text: 'Please do not share photos.',
        agreement_version: '1',
      },
      enrolCode: {
        code: 'K7QM-4XRT-9WZB',
        url: 'https://sprig.acorn.example:8443',
        ca_fingerprint: 'SHA256:9F:86:D0:81',
        qr_svg: '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        expires_at: '2026-12-02T09:10:00Z',
      },
    },
  };
}
